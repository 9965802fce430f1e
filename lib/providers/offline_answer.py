"""The offline model's answer: brief, like a small model, and true of its payload only.

It greets back, does arithmetic ("What's 2+2?" -> "4"), notes a stated fact ("my X is Y") by saying it
back, and recalls a fact only while some message in its payload holds it, its own earlier replies
included. Once none does it says "I can't see that any more". The ``basis`` of an answer (where a fact was
found) goes into the model's report, never into the reply, so nothing but the answer is re-sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from lib.context import SYSTEM_ROLES
from lib.providers.offline_view import Coverage, Seen

GREETING_REPLY = "Hi!"
FORGOTTEN_ANSWER = "I can't see that any more"
NO_ANSWER = "I can't answer that offline: I only greet, do arithmetic, and recall what my payload holds."
NOTHING_NEW = "There is no new message from you in my payload to answer."
QUESTION_START = re.compile(
    r"^\W*(do|does|did|can|could|would|will|should|is|are|was|were|have|has|had|what|what's|which|who|whom|"
    r"whose|when|where|why|how)\b", re.IGNORECASE)
REQUEST_START = re.compile(
    r"^\W*(tell|describe|explain|write|give|show|list|compute|calculate|work out|evaluate|say|name)\b",
    re.IGNORECASE)
GREETING = re.compile(r"^\W*(hello|hi|hey|hiya|howdy|greetings|good (?:morning|afternoon|evening))\b[\s,!.]*"
                      r"(?:there\b)?[\s,!.]*", re.IGNORECASE)
# Words that carry no subject: "What was the word?" looks for "word", "Do you remember X?" for "X".
STOP_WORDS = frozenset("""
a an the and or but if of to in on at by for from with about as into than then so not no yes
i me my mine we us our you your yours he him his she her it its they them their this that these those
there here what what's which who whom whose when where why how is are was were be been being am do does did
done can could would will shall should may might must have has had remember recall recalled tell told
say said know knew see saw seen again please still any some all ever just one thing something
earlier before previous first last ago mentioned
""".split())
MAX_KEY_WORDS = 6
MAX_PLACES = 3
# "my favourite colour is teal", "the password is swordfish": a subject of one to four words, then a value.
_SUBJECT = r"(?P<subject>[^\W\d_][\w'-]*(?:\s+[^\W\d_][\w'-]*){0,3}?)"
_VALUE = r"(?P<value>[^.!?;,\n]{1,60}?)\s*(?=$|[.!?;,\n]|\s+and\s)"
_FACT = {owner: re.compile(rf"\b{owner}\s+{_SUBJECT}\s+(?P<verb>is|are|was|were)\s+{_VALUE}", re.IGNORECASE)
         for owner in ("my", "your", "the")}
_NAMED_WORD = re.compile(r"\bthe\s+(?:secret\s+|magic\s+)?(?P<subject>word|password)\s+(?!(?:is|was)\b)[\"“']?"
                         r"(?P<value>[\w-]+)",
                         re.IGNORECASE)
_ASKED = re.compile(r"\b(?P<owner>my|the)\s+(?P<phrase>[^?.!]{1,60})", re.IGNORECASE)
_SUMMARY_LINE = re.compile(r"^T\d+\s+(user|assistant):\s*(.*)$")
_SUMMARY_HEAD = re.compile(r"^\W*summary of turns?[^:]*:\s*", re.IGNORECASE)
_NUMBER_TOPIC = re.compile(r"\bnumber\s+(-?\d{1,9})\b", re.IGNORECASE)
_ARITH_RUN = re.compile(r"[\d.\s+\-*/()]+")
_ARITH_TOKEN = re.compile(r"\d+(?:\.\d+)?|[-+*/()]")
_WORD_OPERATORS = ((r"\bplus\b", "+"), (r"\bminus\b", "-"), (r"\b(?:times|multiplied by)\b", "*"),
                   (r"\bdivided by\b", "/"), (r"(?<=\d)\s*[x×]\s*(?=\d)", "*"), ("÷", "/"))


@dataclass(frozen=True)
class Answer:
    """What the model says, and what it based it on (for its report; never part of the reply)."""

    text: str
    basis: str | None = None


@dataclass(frozen=True)
class Fact:
    """"<owner> <subject> is <value>" as found in one payload message. ``owner`` is "your" (the user's own)
    or "the"; the answer says it from the model's side: "Your favourite colour is teal." """

    owner: str
    subject: str
    value: str
    place: str
    verb: str = "is"

    @property
    def words(self) -> frozenset[str]:
        return frozenset(key_words(self.subject, limit=None))

    def said(self) -> str:
        return f"{self.owner.capitalize()} {self.subject} {self.verb} {self.value}."


def answer(seen: Sequence[Seen], cover: Coverage) -> Answer:
    """The reply to the last payload message, from the payload only."""
    if not seen or seen[-1].role != "user" or not seen[-1].conversational:
        return Answer(NOTHING_NEW)
    text = seen[-1].text
    greeting = GREETING.match(text)
    rest = text[greeting.end():] if greeting else text
    if greeting and not rest.strip():
        return Answer(GREETING_REPLY)
    found = _respond(rest, seen[:-1], cover)
    return Answer(f"{GREETING_REPLY} {found.text}", found.basis) if greeting else found


def _respond(text: str, earlier: Sequence[Seen], cover: Coverage) -> Answer:
    asking = is_question(text)
    if asking or REQUEST_START.match(text):
        result = arithmetic(text)
        if result is not None:
            return Answer(result, "computed from your message")
        topic = _NUMBER_TOPIC.search(text)
        if topic:
            return Answer(number_fact(int(topic.group(1))), "computed from your message")
    stated = facts_in(text, role="user", place="your message")
    if stated and not asking:
        said = " ".join(f.said() for f in stated)
        return Answer(f"Noted: {said[0].lower()}{said[1:]}")
    if asking:
        return recall(text, earlier, cover)
    return Answer(NO_ANSWER if REQUEST_START.match(text) else "OK.")


def recall(question: str, earlier: Sequence[Seen], cover: Coverage) -> Answer:
    """A fact, or a word's places, while a message in the payload holds it; otherwise say so."""
    asked = set(key_words(question, limit=None))
    subject = asked_subject(question)
    wanted = set(subject[1].split()) if subject else set()
    for fact in reversed(visible_facts(earlier)):  # the newest statement wins: "my colour is now red"
        if fact.words <= asked or (wanted and wanted <= fact.words):
            return Answer(fact.said(), f"recalled from {fact.place}")
    words = key_words(question)
    places = {w: where_words_occur(w, earlier) for w in words}
    seen_words = [w for w in words if places[w]]
    if not seen_words:
        if subject is not None:
            return _not_seen(f"says what {subject[0]} {subject[1]} is.", cover)
        if not words:
            return Answer(NO_ANSWER)
        return _not_seen(f"mentions {', '.join(f'“{w}”' for w in words)}.", cover)
    word = seen_words[0]
    where = places[word]
    more = f" and {len(where) - MAX_PLACES} more" if len(where) > MAX_PLACES else ""
    return Answer(f"I can see “{word}” in {', '.join(where[:MAX_PLACES])}{more}.", "found by word search")


def _not_seen(rest: str, cover: Coverage) -> Answer:
    """No message holds it: "I can't see that any more" when earlier turns are missing from the payload."""
    if cover.trimmed:
        return Answer(f"{FORGOTTEN_ANSWER}: nothing in my payload {rest}", "no message in my payload holds it")
    return Answer(f"Nothing in my payload {rest}", "no message in my payload holds it")


def visible_facts(seen: Iterable[Seen]) -> list[Fact]:
    """Every "my/your/the X is Y" statement in the payload, oldest first, with where it was said."""
    found: list[Fact] = []
    for s in seen:
        if s.summary is not None or s.role in SYSTEM_ROLES:
            for line in s.text.split("\n"):
                speaker = _SUMMARY_LINE.match(_SUMMARY_HEAD.sub("", line.strip()))
                role, body = (speaker.group(1), speaker.group(2)) if speaker else ("system", line)
                found += facts_in(body, role=role, place=s.place)
        else:
            found += facts_in(s.text, role=s.role, place=s.place)
    return found


def facts_in(text: str, *, role: str, place: str) -> list[Fact]:
    """The facts one message states. "my" is the user's own and "your" is the user's when the model says it;
    the model never confuses whose fact it is, so a user's "your" and a model's "my" are not read."""
    owners = {"user": ("my", "the"), "assistant": ("your", "the")}.get(role, ("the",))
    found = []
    for owner in owners:
        for match in _FACT[owner].finditer(text):
            subject = " ".join(match.group("subject").lower().split())
            found.append(Fact("the" if owner == "the" else "your", subject, match.group("value").strip(" \"'“”"),
                              place, match.group("verb").lower()))
    for match in _NAMED_WORD.finditer(text):
        found.append(Fact("the", match.group("subject").lower(), match.group("value"), place))
    return [f for f in found if f.words]


def asked_subject(question: str) -> tuple[str, str] | None:
    """("your", "favourite colour") for "What is my favourite colour?"; None when no "my/the X" is asked."""
    match = _ASKED.search(question)
    if not match:
        return None
    words = key_words(match.group("phrase"), limit=None)
    if not words:
        return None
    return ("your" if match.group("owner").lower() == "my" else "the"), " ".join(words)


def is_question(text: str) -> bool:
    return "?" in text or bool(QUESTION_START.match(text))


def key_words(text: str, *, limit: int | None = MAX_KEY_WORDS) -> list[str]:
    """The words a question is about: lower-cased, stop words removed, in order, without repeats."""
    words = [w.strip("'-") for w in re.findall(r"[\w'-]+", text.lower())]
    chosen = [w for w in dict.fromkeys(words) if w and w not in STOP_WORDS and (len(w) > 1 or w.isdigit())]
    return chosen[:limit] if limit is not None else chosen


def where_words_occur(word: str, seen: Iterable[Seen]) -> list[str]:
    """The places (turn and role) where ``word`` occurs as a whole word, case-insensitively."""
    pattern = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)
    return list(dict.fromkeys(s.place for s in seen if pattern.search(s.text)))


# -- arithmetic ------------------------------------------------------------------------------------------------


def arithmetic(text: str) -> str | None:
    """The value of the first arithmetic expression in ``text`` ("What's 2+2?" -> "4"), or None."""
    for old, new in _WORD_OPERATORS:
        text = re.sub(old, new, text, flags=re.IGNORECASE)
    for found in _ARITH_RUN.findall(text):
        run = found.strip().strip(".")  # a sentence's full stop is not part of the sum
        tokens = _ARITH_TOKEN.findall(run)
        if len(tokens) < 3 or len(tokens) > 60 or "".join(tokens) != "".join(run.split()):
            continue
        if not any(t in "+-*/" for t in tokens[1:]) or not any(t[0].isdigit() for t in tokens):
            continue
        try:
            value = _Parser(tokens).parse()
        except ZeroDivisionError:
            return "That divides by zero, so it has no value."
        except ValueError:
            continue
        return _number(value)
    return None


class _Parser:
    """expr := term (("+"|"-") term)*; term := factor (("*"|"/") factor)*; factor := ["-"|"+"] factor
    | number | "(" expr ")". Exact, with fractions, so 0.1+0.2 is 0.3."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = list(tokens)
        self.at = 0

    def parse(self) -> Fraction:
        value = self._expr()
        if self.at != len(self.tokens):
            raise ValueError("trailing tokens")
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise ValueError("unexpected end")
        self.at += 1
        return token

    def _expr(self) -> Fraction:
        value = self._term()
        while self._peek() in ("+", "-"):
            value = value + self._term() if self._take() == "+" else value - self._term()
        return value

    def _term(self) -> Fraction:
        value = self._factor()
        while self._peek() in ("*", "/"):
            value = value * self._factor() if self._take() == "*" else value / self._factor()
        return value

    def _factor(self) -> Fraction:
        token = self._take()
        if token in ("-", "+"):
            inner = self._factor()
            return -inner if token == "-" else inner
        if token == "(":
            value = self._expr()
            if self._take() != ")":
                raise ValueError("unbalanced parenthesis")
            return value
        if token[0].isdigit():
            return Fraction(token)
        raise ValueError(f"unexpected {token!r}")


def _number(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    text = f"{float(value):.10g}"
    return text if Fraction(text) == value else f"about {text}"


def number_fact(n: int) -> str:
    """Something true about ``n``: its parity, and whether it is prime."""
    parity = "even" if n % 2 == 0 else "odd"
    prime = n > 1 and all(n % d for d in range(2, int(abs(n) ** 0.5) + 1))
    return f"{n} is {parity}" + (", and prime." if prime else ".")
