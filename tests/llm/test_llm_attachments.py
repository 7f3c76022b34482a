"""attachment(): URLs, data URLs, files and bytes become chat-completions content parts."""

from __future__ import annotations

import base64

import pytest

from power_loop import ConfigError, attachment
from power_loop.llm import validate_parts

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVR4nGNgAAIAAAUAAXpeqz8AAAAASUVORK5CYII="
)


def test_url_data_url_bytes_and_files(tmp_path):
    assert attachment("https://x/cat.png") == {"type": "image_url", "image_url": {"url": "https://x/cat.png"}}
    part = attachment(PNG)
    assert part["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert attachment(part["image_url"]["url"]) == part
    (tmp_path / "p.png").write_bytes(PNG)
    assert attachment(tmp_path / "p.png") == part
    (tmp_path / "doc.pdf").write_bytes(b"%PDF-1.4 tiny")
    doc = attachment(str(tmp_path / "doc.pdf"))
    assert doc["type"] == "file" and doc["file"]["filename"] == "doc.pdf"
    assert doc["file"]["file_data"].startswith("data:application/pdf;base64,")
    assert attachment(b"\x00\x01", mime="image/jpeg")["image_url"]["url"].startswith("data:image/jpeg")


def test_refusals():
    with pytest.raises(ConfigError, match="mime"):
        attachment(b"\x00\x01")
    with pytest.raises(ConfigError, match="only images"):
        attachment(b"hello", mime="text/plain")
    with pytest.raises(ConfigError, match="cannot read"):
        attachment("/nonexistent/x.png")
    with pytest.raises(ConfigError, match="base64"):
        attachment("data:image/png,raw")
    with pytest.raises(ConfigError, match="by URL"):
        attachment("https://x/a.pdf", mime="application/pdf")
    with pytest.raises(ConfigError):
        validate_parts("text")
