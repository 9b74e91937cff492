"""What feeds append to every entry's summary that is not the article, cut from its end (pure).

A "read more" link's words ("Continue reading...", "Read full article >>", "Lire la suite"), and
the sentence WordPress, Medium and Slashdot add naming the site ("The post X appeared first on
Y."). Left in, it shows in search results and digest summaries and, shared by every item of a
source, it made unrelated items of one outlet look alike to the story linking.
"""

from __future__ import annotations

import re

_READ_MORE = (
    r"continue reading|read more|read full (?:article|story)|read the full (?:article|story)"
    r"|full story|lire la suite|lire plus|weiterlesen|weiter lesen|mehr lesen|leggi tutto"
    r"|continua a leggere|leggi di più|leer más|seguir leyendo|sigue leyendo|lees meer"
    r"|lees verder|verder lezen|czytaj więcej|czytaj dalej|leia mais|continuar a ler"
    r"|pročitaj više|pročitajte više|opširnije|διαβάστε περισσότερα|devamını oku")
_CREDIT_START = (r"the post|l['’]articolo|der beitrag|l['’]article|la entrada|het bericht|artykuł"
                 r"|o post")
_CREDIT_VERB = (r"appeared first on|proviene da|erschien zuerst auf|est apparu en premier sur"
                r"|se publicó primero en|verscheen eerst op|pochodzi z serwisu"
                r"|apareceu primeiro em")
_MEDIUM = (r" on Medium, where people are continuing the conversation by highlighting and"
           r" responding to this story")
# (words one of which the end must contain, pattern): the words spare the costlier patterns
_TRAILERS = [(guards, re.compile(pattern + r"\s*$", re.IGNORECASE)) for guards, pattern in (
    # after a sentence, a bracket or nothing ("We read more" stays), or wherever it ends in an
    # ellipsis or an arrow (the link's text after a paragraph: "every morning Continue reading...")
    ((), r"(?:^|(?<=[.!?…:;\"”’»)\]]))\s*[(\[]?\s*(?:%s)\b[^\w]{0,6}" % _READ_MORE),
    ((), r"\s*[(\[]?\s*\b(?:%s)\s*(?:…|\.\.\.|»|>>|›|→)[^\w]{0,3}" % _READ_MORE),
    (("more",), r"\s*[(\[]\s*more\s*(?:…|\.\.\.)?\s*[)\]]"),
    (("of this story at",), r"\s*read more of this story at [^.]{1,80}\.?"),
    (("first on", "proviene da", "zuerst auf", "en premier sur", "primero en", "eerst op",
      "z serwisu", "primeiro em"),
     r"\s*(?:%s)\s.{1,300}?\s(?:%s)\s[^.]{1,150}\.?" % (_CREDIT_START, _CREDIT_VERB)),
    (("on medium, where people",),
     r"\s*[^.!?…]{1,300}?\swas originally published in .{1,200}?%s\.?" % _MEDIUM),
)]
_ELLIPSIS_MARK = re.compile(r"\s*[\[(](?:…|\.\.\.)[\])]\s*$")
# Only the end is searched: the patterns are anchored there, and stay cheap on 5,000 characters.
_TAIL = 700


def strip_trailers(summary: str) -> str:
    """A feed summary without the "Continue reading..." or "The post X appeared first on Y." that
    feeds append to it (several: "… Read More » The post … appeared first on …")."""
    head, tail = summary[:-_TAIL], summary[-_TAIL:]
    for _ in range(4):  # real chains have two or three; a hostile one costs no more than this
        cut, low = tail, tail.lower()
        for guards, pattern in _TRAILERS:
            if not guards or any(g in low for g in guards):
                cut = pattern.sub("", cut)
        cut = _ELLIPSIS_MARK.sub("…", cut)
        if cut == tail:
            break
        tail = cut
    return (head + tail).strip()
