"""Topic names and topic filters (MQTT 3.1.1 section 4.7), checked as mosquitto 2.0.11 does.

mosquitto closes the connection on any string field (client id, username, will
topic, topic name, filter) holding a code point its UTF-8 check refuses: NUL, the
C0 and C1 control characters (U+0001-U+001F, U+007F-U+009F) and the Unicode
non-characters (U+FDD0-U+FDEF and U+xFFFE/U+xFFFF of every plane). Python's
decoder already refuses surrogates and overlong forms. Topics and filters with
more than ``MAX_SEPARATORS`` '/' (201 levels) are refused as well.
"""

import re

# mosquitto 2.0.11 refuses more than 200 '/' in a topic or filter: 201 levels pass.
MAX_SEPARATORS = 200

_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(17))
FORBIDDEN_CHARACTER = re.compile(f"[\x00-\x1f\x7f-\x9f{_NONCHARACTERS}]")
# The same without the 16 astral pairs, which make a regex ten times slower per character.
_FORBIDDEN_IN_BMP = re.compile("[\x00-\x1f\x7f-\x9f\ufdd0-\ufdef\ufffe\uffff]")


def forbidden_character(text: str, raw: bytes | None = None) -> str | None:
    """The first code point of ``text`` mosquitto's UTF-8 check refuses, or None.

    ``raw`` is ``text`` as UTF-8 when the caller has it. Fast paths: ASCII text needs
    only ``isprintable`` (false for exactly 0x00-0x1F and 0x7F there); other text the
    BMP search, and the full one only when the bytes hold EF BF BE/BF or xx BF BE/BF,
    the tail every U+xFFFE / U+xFFFF has in UTF-8."""
    if text.isascii():
        if text.isprintable():
            return None
        return next(char for char in text if not char.isprintable())
    found = _FORBIDDEN_IN_BMP.search(text)
    if found is not None:
        return found.group()
    if raw is None:
        raw = text.encode()
    if b"\xbf\xbe" in raw or b"\xbf\xbf" in raw:
        found = FORBIDDEN_CHARACTER.search(text)
        if found is not None:
            return found.group()
    return None


def text_error(text: str, what: str, raw: bytes | None = None) -> str | None:
    """Why ``text`` (a client id, username, topic or filter) is refused, or None."""
    char = forbidden_character(text, raw)
    if char is None:
        return None
    code = ord(char)
    if code == 0:
        return f"NUL character in {what}"
    kind = "control character" if code <= 0x9F else "non-character"
    return f"{kind} U+{code:04X} in {what}"


def filter_error(topic_filter: str, raw: bytes | None = None) -> str | None:
    """Why ``topic_filter`` (``raw`` in UTF-8, when the caller has it) is not a valid
    subscription filter, or None if it is."""
    if not topic_filter:
        return "empty topic filter"
    problem = text_error(topic_filter, "topic filter", raw)
    if problem:
        return problem
    if topic_filter.count("/") > MAX_SEPARATORS:
        return f"topic filter deeper than {MAX_SEPARATORS + 1} levels"
    if "+" not in topic_filter and "#" not in topic_filter:
        return None
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return "'#' must be a whole last level"
        if "+" in level and level != "+":
            return "'+' must be a whole level"
    return None


def name_error(topic: str, raw: bytes | None = None) -> str | None:
    """Why ``topic`` (``raw`` in UTF-8, when the caller has it) cannot be published to,
    or None if it can."""
    if not topic:
        return "empty topic name"
    if "+" in topic or "#" in topic:
        return f"wildcard in topic name {topic[:80]!r}"
    problem = text_error(topic, "topic name", raw)
    if problem:
        return problem
    if topic.count("/") > MAX_SEPARATORS:
        return f"topic name deeper than {MAX_SEPARATORS + 1} levels"
    return None


def matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` matches ``topic_filter``; a leading wildcard skips ``$`` topics."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)
