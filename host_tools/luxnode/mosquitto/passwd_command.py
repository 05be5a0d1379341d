"""``luxnode passwd``: mosquitto_passwd's flags and file format.

    luxnode passwd [-H sha512-pbkdf2|sha512] [-c | -D] FILE USERNAME
    luxnode passwd [-H sha512-pbkdf2|sha512] [-c] -b FILE USERNAME PASSWORD
    luxnode passwd -U FILE

Unlike mosquitto_passwd, a corrupt file is left untouched (the error names
FILE:LINE), -U leaves lines that already hold a hash alone, and the file is
written 0600.
"""

import argparse
from pathlib import Path

from luxnode.errors import LuxnodeError

HASHES = {"sha512-pbkdf2": "7", "sha512": "6"}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "passwd",
        help="manage a mosquitto password_file (mosquitto_passwd equivalent)",
        description="Add, update or delete users in a mosquitto password_file.\n"
                    "The file works with mosquitto 2 and with 'luxnode broker'.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  luxnode passwd -c passwd alice          create the file, ask for alice's password\n"
               "  luxnode passwd -b passwd bob s3cret     add or update bob (password on the command line)\n"
               "  luxnode passwd -D passwd bob            delete bob\n"
               "  luxnode passwd -U passwd                hash the plain-text passwords in the file",
    )
    parser.add_argument("-b", dest="batch", action="store_true",
                        help="batch mode: take the password from the command line (visible in history)")
    parser.add_argument("-c", dest="create", action="store_true",
                        help="create a new password file, overwriting an existing one")
    parser.add_argument("-D", dest="delete", action="store_true", help="delete USERNAME")
    parser.add_argument("-U", dest="upgrade", action="store_true",
                        help="replace plain-text passwords in FILE by hashes")
    parser.add_argument("-H", dest="hash", choices=sorted(HASHES), default="sha512-pbkdf2",
                        help="hash to write: sha512-pbkdf2 ($7$, default) or sha512 ($6$, mosquitto <= 1.6)")
    parser.add_argument("file", metavar="FILE", help="the password file")
    parser.add_argument("username", metavar="USERNAME", nargs="?", help="the user to add, update or delete")
    parser.add_argument("password", metavar="PASSWORD", nargs="?", help="with -b only")
    parser.set_defaults(func=run)


def run(args) -> int:
    from luxnode.mosquitto import passwd

    path = Path(args.file)
    kind = HASHES[args.hash]
    if args.upgrade:
        if args.create or args.delete or args.batch or args.username:
            raise LuxnodeError("-U takes only the password file; run 'luxnode passwd -U FILE'")
        count = _upgrade(path, kind)
        print(f"hashed {count} plain-text password{'s' if count != 1 else ''} in {path}")
        return 0
    if args.create and args.delete:
        raise LuxnodeError("-c and -D cannot be used together")
    if not args.username:
        raise LuxnodeError("a USERNAME is needed; see 'luxnode passwd --help'")
    if args.delete and args.batch:
        raise LuxnodeError("-D takes no password; run 'luxnode passwd -D FILE USERNAME'")
    if args.batch != (args.password is not None):
        raise LuxnodeError("give PASSWORD together with -b, or leave both out to be asked for it")
    try:
        passwd.check_username(args.username)
    except ValueError as exc:
        raise LuxnodeError(str(exc)) from None

    entries = {} if args.create else _read(path)
    if args.delete:
        if args.username not in entries:
            raise LuxnodeError(f"user '{args.username}' is not in {path}; nothing deleted")
        del entries[args.username]
        passwd.write_file(path, entries)
        print(f"deleted user '{args.username}' from {path}")
        return 0
    password = args.password if args.batch else _ask_password()
    action = "updated" if args.username in entries else "added"
    entries[args.username] = passwd.hash_password(password, kind)
    passwd.write_file(path, entries)
    print(f"{action} user '{args.username}' in {path} (${kind}$ {args.hash})")
    return 0


def _read(path: Path) -> dict[str, str]:
    from luxnode.mosquitto import passwd

    if not path.exists():
        raise LuxnodeError(f"password file {path} does not exist; use -c to create it")
    return passwd.read_file(path)


def _ask_password() -> str:
    import getpass

    password = getpass.getpass("Password: ")
    if password != getpass.getpass("Reenter password: "):
        raise LuxnodeError("passwords do not match; nothing changed")
    return password


def _upgrade(path: Path, kind: str) -> int:
    """Hash every ``user:plaintext`` line; lines that already hold a hash stay as they are."""
    from luxnode.mosquitto import lines, passwd

    hashed_now = 0

    def hashed(secret: str) -> str:
        nonlocal hashed_now
        if passwd.is_hash(secret.strip()):
            return secret.strip()
        hashed_now += 1
        return passwd.hash_password(secret, kind)

    text = lines.read_text(path, passwd.PasswdError, "password file")
    passwd.write_file(path, lines.entries(text, path, passwd.PasswdError, "username:password", "user", hashed))
    return hashed_now
