"""The streaming cleaner gives exactly what cleaning the whole output gives, whatever the chunking."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.output.clean import clean_terminal_output
from bot.output.redact import Redactor
from bot.output.stream import OutputStream, StreamCleaner

SAMPLE = (b"\x1b[31mred\x1b[0m line\r\n"
          b"progress 10%\rprogress 100%\r\n"
          b"\x1b]0;title\x07after title\n"
          b"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\r\n"
          b"back\x08\x08ck\n"
          b"tab\there\x1b[2K\x1b[1G\r\n"
          b"\x1bP dcs cut by newline\nend without newline \x1b[3")


def chunks(data: bytes, rng: random.Random) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, 7)
        out.append(data[i:i + n])
        i += n
    return out


def stream(parts: list[bytes], **kwargs: int) -> str:
    cleaner = StreamCleaner(**kwargs)
    return "".join(cleaner.feed(p) for p in parts) + cleaner.flush()


def test_every_split_of_the_sample_cleans_like_the_whole() -> None:
    whole = clean_terminal_output(SAMPLE)
    for seed in range(200):
        assert stream(chunks(SAMPLE, random.Random(seed))) == whole
    for cut in range(len(SAMPLE) + 1):
        assert stream([SAMPLE[:cut], SAMPLE[cut:]]) == whole


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"\xc3\xa9", b"\r", b"\n", b"\r\n", b"\x1b[", b"1", b"m", b"\x1b]",
                                 b"\x07", b"\x08", b"\t", b"\x1b", b"\xe2\x82", b"\xac", b"\x9b"]), max_size=60),
       st.randoms(use_true_random=False))
def test_any_bytes_any_chunking_cleans_like_the_whole(pieces: list[bytes], rng: random.Random) -> None:
    data = b"".join(pieces)
    assert stream(chunks(data, rng)) == clean_terminal_output(data)


def test_text_is_released_line_by_line_not_at_the_end() -> None:
    cleaner = StreamCleaner()
    assert cleaner.feed(b"one\r\ntw") == "one\n"
    assert cleaner.feed(b"o\r\n") == "two\n"
    assert cleaner.feed(b"partial") == ""
    assert cleaner.flush() == "partial"


def test_a_line_longer_than_the_limit_is_released_in_pieces_outside_sequences() -> None:
    cleaner = StreamCleaner(max_line=8)
    out = [cleaner.feed(b"0123456789\xe2\x82"), cleaner.feed(b"\xac\x1b[3"), cleaner.feed(b"1mZ\n")]
    assert out[0] == "0123456789"  # the euro sign's first two bytes are held back
    assert "".join(out) + cleaner.flush() == "0123456789€Z\n"


def test_memory_stays_bounded_for_a_line_without_end() -> None:
    cleaner = StreamCleaner(max_line=1024)
    released = sum(len(cleaner.feed(b"x" * 100)) for _ in range(10_000))
    assert released + len(cleaner.flush()) == 1_000_000
    assert len(cleaner._pending) == 0


def test_streaming_redaction_hides_secrets_split_across_chunks_and_whole_key_blocks() -> None:
    redactor = Redactor([("internal-token", r"itk_[A-Za-z0-9]{32}")])
    token = "itk_" + "A" * 32
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabcdef\n-----END RSA PRIVATE KEY-----\n"
    data = f"token={token}\n{key}done\n".encode()
    out = OutputStream(redactor.redact)
    text = "".join(out.feed(data[i:i + 5]) for i in range(0, len(data), 5)) + out.flush()
    assert token not in text and "MIIEowIBAAKCAQEA" not in text
    assert text.endswith("done\n")
    assert text == redactor.redact(clean_terminal_output(data))
