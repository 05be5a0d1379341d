// The unix port's configuration, changed where the chips differ from it. Passed as MP_CONFIGFILE.
// - Single-precision floats, as the ESP32 and ESP8266 ports have (MICROPY_FLOAT_IMPL_FLOAT in
//   their mpconfigport.h); the unix variants default to double only where it is not set.
// - vfs.rom_ioctl on (the unix variants switch it off), served by simrom.c, so the faithful
//   build has the ESP8266's ROMFS partition.
#define MICROPY_FLOAT_IMPL (MICROPY_FLOAT_IMPL_FLOAT)

#include <mpconfigport.h>

#undef MICROPY_VFS_ROM_IOCTL
#define MICROPY_VFS_ROM_IOCTL (1)
