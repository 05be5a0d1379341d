// The unix port's configuration, changed where the chips differ from it. Passed as MP_CONFIGFILE.
// - Single-precision floats, as the ESP32 and ESP8266 ports have (MICROPY_FLOAT_IMPL_FLOAT in
//   their mpconfigport.h); the unix variants default to double only where it is not set.
// - With LUX_OBJ_REPR_C (luxnode.sim.port builds it for the ESP8266), that port's object
//   representation: a float in the object word, not on the heap (MICROPY_OBJ_REPR_C).
// - vfs.rom_ioctl on (the unix variants switch it off), served by simrom.c, so the faithful
//   build has the ESP8266's ROMFS partition.
#define MICROPY_FLOAT_IMPL (MICROPY_FLOAT_IMPL_FLOAT)
#ifdef LUX_OBJ_REPR_C
#define MICROPY_OBJ_REPR (MICROPY_OBJ_REPR_C)
#endif

#include <mpconfigport.h>

#undef MICROPY_VFS_ROM_IOCTL
#define MICROPY_VFS_ROM_IOCTL (1)
