SIMCHIP_DIR := $(USERMOD_DIR)
SRC_USERMOD_C += $(SIMCHIP_DIR)/simchip.c
SRC_USERMOD_C += $(SIMCHIP_DIR)/simrom.c
# The chips' configuration (chip_config.h: single-precision floats, vfs.rom_ioctl on, served
# by simrom.c); main.c's own vfs.rom_ioctl (an empty image) is renamed out of the way.
CFLAGS_USERMOD += -DMP_CONFIGFILE='"$(SIMCHIP_DIR)/chip_config.h"'
$(BUILD)/main.o: CFLAGS += -Dmp_vfs_rom_ioctl=mp_vfs_rom_ioctl_unix_empty
