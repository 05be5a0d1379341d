// The unix port's configuration with vfs.rom_ioctl on (its variants switch it off), so
// the board-faithful build has the ROMFS partition of simrom.c. Passed as MP_CONFIGFILE.
#include <mpconfigport.h>

#undef MICROPY_VFS_ROM_IOCTL
#define MICROPY_VFS_ROM_IOCTL (1)
