// The unix port's configuration, changed where the chips differ from it. Passed as MP_CONFIGFILE.
// - Single-precision floats, as the ESP32 and ESP8266 ports have (MICROPY_FLOAT_IMPL_FLOAT in
//   their mpconfigport.h); the unix variants default to double only where it is not set.
// - With LUX_OBJ_REPR_C (luxnode.sim.port builds it for the ESP8266), that port's object
//   representation: a float in the object word, not on the heap (MICROPY_OBJ_REPR_C).
// - vfs.rom_ioctl on (the unix variants switch it off), served by simrom.c, so the faithful
//   build has the ESP8266's ROMFS partition.
// - With LUX_OBJ_REPR_C (the ESP8266's build), what ports/esp8266/mpconfigport.h and
//   boards/ESP8266_GENERIC/mpconfigboard.h (MicroPython 1c3c201, the 2 MiB variants) set unlike
//   the unix port's standard variant, where Python code can see it: both are at the
//   EXTRA_FEATURES ROM level, and the ESP8266 switches these off, so firmware that uses one
//   fails here as on the chip (an AttributeError or NameError, not a pass).
#define MICROPY_FLOAT_IMPL (MICROPY_FLOAT_IMPL_FLOAT)
#ifdef LUX_OBJ_REPR_C
#define MICROPY_OBJ_REPR (MICROPY_OBJ_REPR_C)
#endif

#include <mpconfigport.h>

#undef MICROPY_VFS_ROM_IOCTL
#define MICROPY_VFS_ROM_IOCTL (1)

#ifdef LUX_OBJ_REPR_C
// str.partition/rpartition, center, splitlines; slice.indices; compile() (and with it the
// `code` type), execfile(), NotImplemented, 3-argument pow(), complex; setattr/delattr;
// a module's __file__
#undef MICROPY_PY_BUILTINS_STR_PARTITION
#define MICROPY_PY_BUILTINS_STR_PARTITION (0)
#undef MICROPY_PY_BUILTINS_STR_CENTER
#define MICROPY_PY_BUILTINS_STR_CENTER (0)
#undef MICROPY_PY_BUILTINS_STR_SPLITLINES
#define MICROPY_PY_BUILTINS_STR_SPLITLINES (0)
#undef MICROPY_PY_BUILTINS_SLICE_INDICES
#define MICROPY_PY_BUILTINS_SLICE_INDICES (0)
#undef MICROPY_PY_BUILTINS_COMPILE
#define MICROPY_PY_BUILTINS_COMPILE (0)
#undef MICROPY_PY_BUILTINS_EXECFILE
#define MICROPY_PY_BUILTINS_EXECFILE (0)
#undef MICROPY_PY_BUILTINS_NOTIMPLEMENTED
#define MICROPY_PY_BUILTINS_NOTIMPLEMENTED (0)
#undef MICROPY_PY_BUILTINS_POW3
#define MICROPY_PY_BUILTINS_POW3 (0)
#undef MICROPY_PY_BUILTINS_COMPLEX
#define MICROPY_PY_BUILTINS_COMPLEX (0)
#undef MICROPY_PY_DELATTR_SETATTR
#define MICROPY_PY_DELATTR_SETATTR (0)
#undef MICROPY_MODULE___FILE__
#define MICROPY_MODULE___FILE__ (0)
// math: inf, nan, tau; gamma, lgamma, erf, erfc; factorial; isclose. random: randrange,
// randint, choice, random, uniform (getrandbits and seed stay). binascii.crc32, hashlib.md5.
#undef MICROPY_PY_MATH_CONSTANTS
#define MICROPY_PY_MATH_CONSTANTS (0)
#undef MICROPY_PY_MATH_SPECIAL_FUNCTIONS
#define MICROPY_PY_MATH_SPECIAL_FUNCTIONS (0)
#undef MICROPY_PY_MATH_FACTORIAL
#define MICROPY_PY_MATH_FACTORIAL (0)
#undef MICROPY_PY_MATH_ISCLOSE
#define MICROPY_PY_MATH_ISCLOSE (0)
#undef MICROPY_PY_RANDOM_EXTRA_FUNCS
#define MICROPY_PY_RANDOM_EXTRA_FUNCS (0)
#undef MICROPY_PY_BINASCII_CRC32
#define MICROPY_PY_BINASCII_CRC32 (0)
#undef MICROPY_PY_HASHLIB_MD5
#define MICROPY_PY_HASHLIB_MD5 (0)
// os.getenv/putenv/unsetenv, system, errno (the board model reads its runner's settings with
// _simchip.getenv instead).
#undef MICROPY_PY_OS_GETENV_PUTENV_UNSETENV
#define MICROPY_PY_OS_GETENV_PUTENV_UNSETENV (0)
#undef MICROPY_PY_OS_SYSTEM
#define MICROPY_PY_OS_SYSTEM (0)
#undef MICROPY_PY_OS_ERRNO
#define MICROPY_PY_OS_ERRNO (0)
// sys: atexit, exc_info, executable, ps1/ps2; platform "esp8266" and implementation._machine
// as the 2 MiB board has them; gc.collect() returns None; micropython has no mem_total,
// mem_current, mem_peak. (_thread and termios: luxnode.sim.port's PORT_MAKE.)
#undef MICROPY_PY_SYS_ATEXIT
#define MICROPY_PY_SYS_ATEXIT (0)
#undef MICROPY_PY_SYS_EXC_INFO
#define MICROPY_PY_SYS_EXC_INFO (0)
#undef MICROPY_PY_SYS_EXECUTABLE
#define MICROPY_PY_SYS_EXECUTABLE (0)
#undef MICROPY_PY_SYS_PS1_PS2
#define MICROPY_PY_SYS_PS1_PS2 (0)
#undef MICROPY_PY_SYS_PLATFORM
#define MICROPY_PY_SYS_PLATFORM "esp8266"
#undef MICROPY_BANNER_MACHINE
#define MICROPY_BANNER_MACHINE "ESP module with ESP8266"
#undef MICROPY_PY_GC_COLLECT_RETVAL
#define MICROPY_PY_GC_COLLECT_RETVAL (0)
#undef MICROPY_MEM_STATS
#define MICROPY_MEM_STATS (0)
// Error messages as the ESP8266 words them (NORMAL: no names of the objects involved), and
// floats printed by its smaller formatter (BASIC: str(0.1) may differ in the last digits).
#undef MICROPY_ERROR_REPORTING
#define MICROPY_ERROR_REPORTING (MICROPY_ERROR_REPORTING_NORMAL)
#undef MICROPY_FLOAT_FORMAT_IMPL
#define MICROPY_FLOAT_FORMAT_IMPL (MICROPY_FLOAT_FORMAT_IMPL_BASIC)
// The compiler (code compiled on the board: boot.py, main.py) with its optimisations off and
// its parser's allocations as small; the VM's lookup caches off.
#undef MICROPY_COMP_MODULE_CONST
#define MICROPY_COMP_MODULE_CONST (0)
#undef MICROPY_COMP_TRIPLE_TUPLE_ASSIGN
#define MICROPY_COMP_TRIPLE_TUPLE_ASSIGN (0)
#undef MICROPY_COMP_RETURN_IF_EXPR
#define MICROPY_COMP_RETURN_IF_EXPR (0)
#undef MICROPY_ALLOC_LEXER_INDENT_INIT
#define MICROPY_ALLOC_LEXER_INDENT_INIT (8)
#undef MICROPY_ALLOC_PARSE_RULE_INIT
#define MICROPY_ALLOC_PARSE_RULE_INIT (48)
#undef MICROPY_ALLOC_PARSE_RULE_INC
#define MICROPY_ALLOC_PARSE_RULE_INC (8)
#undef MICROPY_ALLOC_PARSE_RESULT_INC
#define MICROPY_ALLOC_PARSE_RESULT_INC (8)
#undef MICROPY_ALLOC_PARSE_CHUNK_INIT
#define MICROPY_ALLOC_PARSE_CHUNK_INIT (64)
#undef MICROPY_OPT_LOAD_ATTR_FAST_PATH
#define MICROPY_OPT_LOAD_ATTR_FAST_PATH (0)
#undef MICROPY_OPT_MAP_LOOKUP_CACHE
#define MICROPY_OPT_MAP_LOOKUP_CACHE (0)
#undef MICROPY_OPT_MPZ_BITWISE
#define MICROPY_OPT_MPZ_BITWISE (0)
#undef MICROPY_OPT_MATH_FACTORIAL
#define MICROPY_OPT_MATH_FACTORIAL (0)
#undef MICROPY_REPL_EMACS_KEYS
#define MICROPY_REPL_EMACS_KEYS (0)
#endif
