// The chip's ROMFS partition for the board-faithful unix build: MicroPython's
// vfs.rom_ioctl as the ESP8266 port has it (ports/esp8266/vfs_rom_ioctl.c, the
// ESP8266_GENERIC FLASH_2M_ROMFS build), backed by the file ".romfs" in the board's
// folder (the working directory at start). The file is mapped read-only, outside the
// GC heap, as the chip maps its flash: .mpy files in it execute in place. Its size is
// the partition's (luxnode.sim.port.romfs_partition writes it erased, from the board
// file's romfs_bytes); without it the board has no ROMFS (0 segments, the ESP32 default).
//
// Writes follow the chip's flash: WRITE_PREPARE erases whole 4 KiB sectors from the
// partition's start to 0xff, WRITE can only clear bits (NOR flash), so an image written
// over an unerased partition is garbage there too. mp_init mounts the segment at /rom.
//
// The unix port's main.c defines its own mp_vfs_rom_ioctl (an empty image) under
// MICROPY_VFS_ROM_IOCTL; micropython.mk renames that one out of the way.
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "py/mperrno.h"
#include "py/objarray.h"
#include "py/runtime.h"
#include "extmod/vfs.h"

#if MICROPY_VFS_ROM_IOCTL

#define ROMFS_FILE ".romfs"
#define ROMFS_SECTOR (4096) // the ESP8266's flash erase unit
#define ROMFS_MIN_WRITE (4)

static int romfs_fd = -1;
static size_t romfs_bytes;
static int romfs_opened;
static mp_obj_array_t romfs_obj;

static void romfs_open(void) {
    if (romfs_opened) {
        return;
    }
    romfs_opened = 1;
    int fd = open(ROMFS_FILE, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0) {
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    void *mapped = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (mapped == MAP_FAILED) {
        close(fd);
        return;
    }
    romfs_fd = fd;
    romfs_bytes = st.st_size;
    mp_obj_memoryview_init(&romfs_obj, 'B', 0, romfs_bytes, mapped); // read-only, like flash
}

static mp_obj_t romfs_error(int err) {
    return MP_OBJ_NEW_SMALL_INT(-err);
}

// Erase [0, len) rounded up to whole sectors, as the ESP8266 does with rom_ioctl(3, id, len).
static mp_obj_t romfs_prepare(mp_int_t len) {
    static const uint8_t erased[ROMFS_SECTOR] = { [0 ... ROMFS_SECTOR - 1] = 0xff };
    if (len < 0 || (size_t)len > romfs_bytes) {
        return romfs_error(MP_EINVAL); // on the chip: past the partition, into the filesystem
    }
    for (size_t dest = 0; dest < (size_t)len; dest += ROMFS_SECTOR) {
        size_t n = romfs_bytes - dest < ROMFS_SECTOR ? romfs_bytes - dest : ROMFS_SECTOR;
        if (pwrite(romfs_fd, erased, n, dest) != (ssize_t)n) {
            return romfs_error(MP_EIO);
        }
    }
    return MP_OBJ_NEW_SMALL_INT(ROMFS_MIN_WRITE);
}

// Program buf at offset: NOR flash only turns 1 bits into 0.
static mp_obj_t romfs_write(mp_int_t offset, mp_obj_t buf) {
    mp_buffer_info_t bufinfo;
    mp_get_buffer_raise(buf, &bufinfo, MP_BUFFER_READ);
    if (offset < 0 || (size_t)offset + bufinfo.len > romfs_bytes) {
        return romfs_error(MP_EINVAL);
    }
    const uint8_t *flash = romfs_obj.items;
    const uint8_t *data = bufinfo.buf;
    uint8_t merged[256];
    for (size_t done = 0; done < bufinfo.len; done += sizeof(merged)) {
        size_t n = bufinfo.len - done < sizeof(merged) ? bufinfo.len - done : sizeof(merged);
        for (size_t i = 0; i < n; i++) {
            merged[i] = flash[offset + done + i] & data[done + i];
        }
        if (pwrite(romfs_fd, merged, n, offset + done) != (ssize_t)n) {
            return romfs_error(MP_EIO);
        }
    }
    return MP_OBJ_NEW_SMALL_INT(0);
}

mp_obj_t mp_vfs_rom_ioctl(size_t n_args, const mp_obj_t *args) {
    romfs_open();
    mp_int_t cmd = mp_obj_get_int(args[0]);
    if (cmd == MP_VFS_ROM_IOCTL_GET_NUMBER_OF_SEGMENTS) {
        return MP_OBJ_NEW_SMALL_INT(romfs_fd >= 0);
    }
    if (romfs_fd < 0) {
        return romfs_error(MP_EINVAL);
    }
    // Like the ESP8266: the segment id is not checked, and WRITE_PREPARE takes args[2] as
    // the length (its 4-argument form is not supported there either).
    switch (cmd) {
        case MP_VFS_ROM_IOCTL_GET_SEGMENT:
            return MP_OBJ_FROM_PTR(&romfs_obj);
        case MP_VFS_ROM_IOCTL_WRITE_PREPARE:
            return n_args >= 3 ? romfs_prepare(mp_obj_get_int(args[2])) : romfs_error(MP_EINVAL);
        case MP_VFS_ROM_IOCTL_WRITE:
            return n_args >= 4 ? romfs_write(mp_obj_get_int(args[2]), args[3]) : romfs_error(MP_EINVAL);
        default:
            return romfs_error(MP_EINVAL);
    }
}

#endif // MICROPY_VFS_ROM_IOCTL
