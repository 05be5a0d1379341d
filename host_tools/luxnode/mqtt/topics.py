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
_FORBIDDEN = "\x00-\x1f\x7f-\x9f" + _NONCHARACTERS
# One search per message: a forbidden code point or a wildcard in a topic name.
FORBIDDEN_CHARACTER = re.compile(f"[{_FORBIDDEN}]")
FORBIDDEN_IN_NAME = re.compile(f"[{_FORBIDDEN}+#]")


def text_error(text: str, what: str) -> str | None:
    """Why ``text`` (a client id, username, topic or filter) is refused, or None."""
    found = FORBIDDEN_CHARACTER.search(text)
    if found is None:
        return None
    code = ord(found.group())
    if code == 0:
        return f"NUL character in {what}"
    kind = "control character" if code <= 0x9F else "non-character"
    return f"{kind} U+{code:04X} in {what}"


def filter_error(topic_filter: str) -> str | None:
    """Why ``topic_filter`` is not a valid subscription filter, or None if it is."""
    if not topic_filter:
        return "empty topic filter"
    problem = text_error(topic_filter, "topic filter")
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


def name_error(topic: str) -> str | None:
    """Why ``topic`` cannot be published to, or None if it can."""
    if not topic:
        return "empty topic name"
    if "+" in topic or "#" in topic:
        return f"wildcard in topic name {topic[:80]!r}"
    problem = text_error(topic, "topic name")
    if problem:
        return problem
    if topic.count("/") > MAX_SEPARATORS:
        return f"topic name deeper than {MAX_SEPARATORS + 1} levels"
    return None


def is_wildcard(topic_filter: str) -> bool:
    return "+" in topic_filter or "#" in topic_filter


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
