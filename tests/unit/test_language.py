"""Language identification on short texts: English full of foreign names is English, other languages stay
theirs, and the confidence says how sure the tag is.

The labelled set was written for this test: 35 short English sentences (most with accented names, as
the issue's "an English sentence with a few accented names") and 30 short sentences in 14 other
languages. py3langid alone tags 20 of the 35 English ones English (the rest French, Danish, Tagalog,
Nigerian Pidgin, ...) and all 30 others right.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from mmfs.transforms.text.clean import LanguageIdentifier
from mmfs.transforms.text.language import identify

ENGLISH = [
    "José and Zoë met François at the café.",
    "The meeting with Søren Kierkegård and Renée Zellweger is postponed.",
    "Hello world",
    "Call Ana at noon",
    "Müller, Ångström and Łukasz signed the contract on Tuesday.",
    "Dr. Nuñez will review the report.",
    "Grüße from Zürich!",
    "Thanks, Björn!",
    "Señor Gómez arrived late again.",
    "Ask Chloé whether Begoña has the keys.",
    "Maël and Anaïs moved to São Paulo last year.",
    "I told Jürgen the train leaves at six.",
    "Good morning, Ines.",
    "Where is the station?",
    "Please send the invoice to Zoltán Kovács.",
    "We had crêpes and crème brûlée in Montréal.",
    "Siobhán Ní Bhriain won the prize.",
    "Bring the naïve résumé to Ms. Éléonore Dubois.",
    "Happy birthday, Ingrid!",
    "The quick brown fox jumps over the lazy dog.",
    "Open the door",
    "It rained all day in Kraków.",
    "Nice to meet you",
    "Paweł Wąsowski and Małgorzata Żak will join us for dinner.",
    "See you soon",
    "Tomás, Iñaki and Andrés play football on Sundays.",
    "Let me know when Dvořák's symphony starts.",
    "Is this seat free?",
    "Frédéric Chopin was born near Warsaw.",
    "My flight to Reykjavík was cancelled.",
    "he might even have been made the amiable himself",
    "Thank you very much",
    "Lunch with Åsa and Øystein",
    "Great job, Sébastien",
    "Turn left after the bridge",
]
OTHER = [
    ("de", "Das ist ein kurzer Satz."),
    ("de", "Wir treffen uns morgen um acht Uhr am Bahnhof."),
    ("de", "Ich habe keine Zeit."),
    ("de", "Wo ist die nächste Apotheke?"),
    ("fr", "Je suis très content."),
    ("fr", "Nous partons demain matin pour Lyon."),
    ("fr", "Où est la gare, s'il vous plaît ?"),
    ("fr", "Il fait beau aujourd'hui."),
    ("es", "¿Dónde está la biblioteca?"),
    ("es", "Mañana vamos a la playa con mis primos."),
    ("es", "No tengo tiempo para eso."),
    ("it", "Ciao Giuseppe, come stai?"),
    ("it", "Domani andiamo al mare con gli amici."),
    ("it", "Non ho capito la domanda."),
    ("nl", "Ik heb geen tijd vandaag."),
    ("nl", "Waar is het station?"),
    ("nl", "We gaan morgen naar de markt."),
    ("pt", "Onde fica a estação de comboios?"),
    ("pt", "Eu não tenho tempo hoje."),
    ("pt", "Vamos jantar com os meus pais amanhã."),
    ("sv", "Jag har inte tid i dag."),
    ("sv", "Var ligger järnvägsstationen?"),
    ("da", "Jeg har ikke tid i dag."),
    ("da", "Hvor ligger banegården?"),
    ("pl", "Nie mam dzisiaj czasu."),
    ("pl", "Gdzie jest dworzec kolejowy?"),
    ("tr", "Bugün hiç vaktim yok."),
    ("fi", "Minulla ei ole tänään aikaa."),
    ("cs", "Dnes nemám čas."),
    ("hu", "Ma nincs időm."),
]


def test_short_english_with_foreign_names_is_english() -> None:
    """At least 32 of the 35 (measured: 32; the three left are "Hello world", "Call Ana at noon" and
    "Grüße from Zürich!", whose few words say little), and each accented-name sentence of the issue's kind."""
    tags = {t: identify(t) for t in ENGLISH}
    wrong = [(t, g) for t, g in tags.items() if g is None or g.code != "en"]
    assert len(wrong) <= 3, wrong
    for text in (
        "José and Zoë met François at the café.",
        "Lunch with Åsa and Øystein",
        "The meeting with Søren Kierkegård and Renée Zellweger is postponed.",
    ):
        assert tags[text] is not None and tags[text].code == "en", tags[text]


@pytest.mark.parametrize(("lang", "text"), OTHER)
def test_other_languages_keep_their_tag(lang: str, text: str) -> None:
    guess = identify(text)
    assert guess is not None and guess.code == lang


def test_confidence_is_a_share_that_grows_with_evidence() -> None:
    """0 to 1; a clear paragraph is surer than two words that could be many languages."""
    clear = identify("The owls hunt at night and sleep through the day in the old barn by the river. " * 5)
    vague = identify("Hello world")
    assert clear is not None and vague is not None
    assert clear.code == "en" and 0.0 <= vague.confidence < 0.5 < clear.confidence <= 1.0
    assert identify("1234 5678 !!") is None and LanguageIdentifier.identify("") is None
    scored = LanguageIdentifier.identify_scored("Das ist ein kurzer Satz.")
    assert scored is not None and scored.code == LanguageIdentifier.identify("Das ist ein kurzer Satz.")


def test_stop_lists_are_read_without_building_spacy_languages() -> None:
    """Identifying a language reads spaCy's stop lists alone: importing `spacy.lang.fr` builds its
    tokenizer exceptions (seconds), which a run that never tokenizes French must not pay."""
    code = (
        "import sys; from mmfs.transforms.text.language import identify, _stop_words; "
        "identify('Le chat dort sur le canapé pendant que la pluie tombe sur la ville.'); "
        "assert len(_stop_words('fr')) > 300 and len(_stop_words('de')) > 300; "
        "print(sorted(m for m in sys.modules if m.startswith('spacy')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
