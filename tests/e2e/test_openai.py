"""POST /v1/chat/completions with the official `openai` client against a running server."""

import base64

import httpx
import pytest

from support import image_bytes, render_lines

openai = pytest.importorskip("openai", reason="pip install openai (the `test` extra)")

KEY = "sk-venvserve-test"


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared_data_dir):
    from support import start_server

    server = start_server(tmp_path_factory.mktemp("openai"), data_dir=shared_data_dir, args=("--api-key", KEY))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=300)


def data_url(lines: list[str]) -> str:
    png = image_bytes(render_lines(lines, size=48))
    return "data:image/png;base64," + base64.b64encode(png).decode()


def user_message(url: str, prompt: str = "Transcribe the text in this image.") -> list[dict]:
    return [{"role": "system", "content": "You are an OCR engine."},
            {"role": "user", "content": [{"type": "text", "text": prompt},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


def words(text: str) -> str:
    return " ".join(text.split()).lower()


def test_completion(client):
    answer = client.chat.completions.create(model="tesseract", messages=user_message(data_url(["Hello venvserve"])))
    assert answer.object == "chat.completion"
    assert answer.model == "tesseract"
    choice = answer.choices[0]
    assert choice.message.role == "assistant" and choice.finish_reason == "stop"
    assert "hello venvserve" in words(choice.message.content)
    assert answer.usage.completion_tokens == len(choice.message.content.split())


def test_streamed_completion(client):
    stream = client.chat.completions.create(model="tesseract", stream=True,
                                            stream_options={"include_usage": True},
                                            messages=user_message(data_url(["Streaming works"])))
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "streaming works" in words(text)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == len(text.split())


def test_remote_urls_are_refused(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="tesseract",
                                       messages=user_message("https://example.com/page.png"))
    assert caught.value.code == "remote_url_refused"
    assert "data URL" in caught.value.body["hint"]


def test_unknown_model_and_missing_key(client, server):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model", messages=user_message(data_url(["x"])))
    assert caught.value.code == "model_not_found"
    anonymous = openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        anonymous.chat.completions.create(model="tesseract", messages=user_message(data_url(["x"])))


def test_prompt_picks_markdown_and_bad_input_is_a_400(server):
    http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    url = data_url(["Title"])
    answer = http.post("/v1/chat/completions", json={
        "model": "echo", "messages": user_message(url, "Convert the document to markdown.")}).json()
    assert answer["venvserve"]["format"] == "markdown"
    assert answer["choices"][0]["message"]["content"].endswith("bytes")  # echo answers the page's size
    plain = http.post("/v1/chat/completions", json={"model": "echo", "messages": user_message(url)}).json()
    assert plain["venvserve"]["format"] == "text"
    two = http.post("/v1/chat/completions", json={"model": "echo", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}, {"type": "image_url", "image_url": url}]}]}).json()
    assert len(two["venvserve"]["pages"]) == 2 and two["choices"][0]["message"]["content"].count("bytes") == 2

    for messages, code in (
        ([{"role": "user", "content": "no image here"}], "no_image"),
        (user_message("data:image/png;base64,@@not-base64@@"), "invalid_image_url"),
        (user_message("file:///etc/passwd"), "invalid_image_url"),
        ("not a list", "invalid_request"),
    ):
        r = http.post("/v1/chat/completions", json={"model": "echo", "messages": messages})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == code
    gif = "data:image/gif;base64," + base64.b64encode(b"GIF89a" + b"\0" * 20).decode()
    r = http.post("/v1/chat/completions", json={"model": "echo", "messages": user_message(gif)})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
