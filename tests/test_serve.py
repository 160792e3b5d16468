"""`lightning-gans serve` over HTTP: five servers (StyleGAN, a class-conditional GAN, Pix2Pix, SRResNet, GAN-INT-CLS;
tiny pretrained folders) started as subprocesses on free localhost ports. Every endpoint answers; images equal the
Python API's for the same seeds; every bad request gets its 4xx and the next good request still succeeds; concurrent
clients are batched."""

from __future__ import annotations

import base64
import io
import json
import threading
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import lightning_gans
from lightning_gans.serving import png_bytes, uint8_images
from tests.servers import start, tiny_folder, wait_until_up

requests = pytest.importorskip("requests")
pytest.importorskip("litserve")

SERVED = ("StyleGAN", "CGAN", "Pix2Pix", "SRResNet", "GANINTCLS")
TASK = {"Pix2Pix": "translate", "SRResNet": "upscale"}
#: Small limits on the SR server, so that "too large" is cheap to send.
SR_LIMITS = ["--max_upload_mb", "0.05", "--max_upload_side", "64"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """{family: (url, folder)}: one server per family, started together."""
    root = tmp_path_factory.mktemp("served")
    folders = {name: tiny_folder(name, root, metrics={"val/fid": 12.5}) for name in SERVED}
    procs = {
        name: start(
            "serve", ["--pretrained", str(folder), *(SR_LIMITS if name == "SRResNet" else [])], root / f"{name}.log"
        )
        for name, folder in folders.items()
    }
    try:
        wait_until_up(list(procs.values()), "/health")
        yield {name: (proc.url, folders[name]) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.stop()


@pytest.fixture(scope="module")
def models(served):
    return {name: lightning_gans.from_pretrained(folder) for name, (_, folder) in served.items()}


def post(url: str, **kwargs) -> requests.Response:
    return requests.post(url, timeout=60, **kwargs)


def png(image_hwc: torch.Tensor) -> bytes:
    array = image_hwc.numpy()
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(buffer, format="PNG")
    return buffer.getvalue()


def assert_same_picture(answer: bytes, expected: torch.Tensor, nrow: int | None = None) -> None:
    """The PNG answered equals ``png_bytes(expected)`` up to one grey level (another process, other threads)."""
    got, want = uint8_images(answer).int(), uint8_images(png_bytes(expected, nrow)).int()
    assert got.shape == want.shape
    assert (got - want).abs().max() <= 1


def noise(model, n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", SERVED)
def test_health_and_info_describe_the_model(served, name):
    url, _ = served[name]
    assert requests.get(url + "/health", timeout=10).text == "ok"
    info = requests.get(url + "/info", timeout=10).json()["model"]
    assert info["family"] == name and info["task"] == TASK.get(name, "sample")
    assert info["endpoint"] == "/" + info["task"] and info["metrics"] == {"val/fid": 12.5}
    assert info["batching"]["max_batch_size"] == 16
    if name == "CGAN":
        assert info["fields"]["class"].startswith("0..9")
    if name == "SRResNet":
        assert info["scale"] == 4 and info["limits"]["max_upload_side"] == 64


def test_stylegan_samples_truncation_and_style_mixing_equal_the_python_api(served, models):
    url, model = served["StyleGAN"][0], models["StyleGAN"]
    answer = post(url + "/sample", json={"n": 3, "seed": 11, "truncation_psi": 0.5})
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert_same_picture(answer.content, model.sample(z=noise(model, 3, 11), truncation_psi=0.5))
    mixed = post(url + "/sample", json={"n": 2, "seed": 1, "mix_seeds": [5, 6], "format": "json"}).json()
    assert mixed["grid"] == {"rows": 2, "cols": 2}
    cols = torch.cat([noise(model, 1, 5), noise(model, 1, 6)])
    grid, nrow = model.style_mixing_grid(noise(model, 2, 1), cols)
    assert_same_picture(base64.b64decode(mixed["images"][0]), grid, nrow)


def test_class_conditional_samples_equal_the_python_api_as_png_and_json(served, models):
    url, model = served["CGAN"][0], models["CGAN"]
    sevens = post(url + "/sample", json={"n": 4, "seed": 3, "class": 7})
    assert_same_picture(sevens.content, model.sample(z=noise(model, 4, 3), labels=torch.full((4,), 7)))
    # curl -d sends JSON as a form (no Content-Type): read as JSON; format json: one PNG per image
    answer = post(url + "/sample", data=json.dumps({"n": 2, "seed": 3, "format": "json"})).json()
    assert answer["n"] == 2 and answer["seed"] == 3 and len(answer["images"]) == 2
    default_labels = model.sample(z=noise(model, 2, 3))  # without a class: 0, 1, ... as sample() gives a given z
    for encoded, image in zip(answer["images"], default_labels):
        assert_same_picture(base64.b64decode(encoded), image[None])
    assert post(url + "/sample").status_code == 200  # an empty body: every field at its default


def test_text_to_image_samples_equal_the_python_api_and_report_unknown_words(served, models):
    url, model = served["GANINTCLS"][0], models["GANINTCLS"]
    answer = post(url + "/sample", json={"n": 2, "seed": 4, "prompt": "a thick purple seven", "format": "json"})
    body = answer.json()
    assert answer.status_code == 200 and body["unknown_words"] == ["purple"]
    expected = model.sample(z=noise(model, 2, 4), text="a thick purple seven")
    for encoded, image in zip(body["images"], expected):
        assert_same_picture(base64.b64decode(encoded), image[None])


def test_translate_answers_at_the_uploads_size_as_the_python_api(served, models):
    url, model = served["Pix2Pix"][0], models["Pix2Pix"]
    from datamodules.transforms import to_signed_tensor

    pixels = torch.randint(0, 256, (24, 40, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    upload = Image.fromarray(pixels.numpy())
    answer = post(url + "/translate", files={"image": ("x.png", png(pixels))})
    assert answer.status_code == 200
    x = to_signed_tensor(upload.resize((32, 32), Image.BICUBIC))[None]
    expected = F.interpolate(model.translate(x), size=(24, 40), mode="bicubic", align_corners=False).clamp(-1, 1)
    assert Image.open(io.BytesIO(answer.content)).size == (40, 24)
    assert_same_picture(answer.content, expected)


def test_upscale_answers_scale_times_larger_with_the_bicubic_in_json(served, models):
    url, model = served["SRResNet"][0], models["SRResNet"]
    lr = torch.randint(0, 256, (8, 12, 3), dtype=torch.uint8)
    answer = post(url + "/upscale", files={"image": ("lr.png", png(lr))}, data={"format": "json"})
    body = answer.json()
    assert answer.status_code == 200 and set(body) >= {"images", "bicubic", "batch_size"}
    x = lr.permute(2, 0, 1)[None].float().div(127.5).sub(1)
    assert_same_picture(base64.b64decode(body["images"][0]), model.translate(x))
    assert Image.open(io.BytesIO(base64.b64decode(body["bicubic"][0]))).size == (48, 32)


def _grey_png() -> bytes:
    return png(torch.zeros(8, 8, 1, dtype=torch.uint8))


#: (family, what is sent, status, words of the message)
BAD = [
    ("CGAN", {"json": {"n": 65}}, 400, "n must be in 1..64"),
    ("CGAN", {"json": {"class": 10}}, 400, "class must be in 0..9"),
    ("CGAN", {"json": {"n": "four"}}, 400, "n must be an integer"),
    ("CGAN", {"json": {"truncation_psi": 0.5}}, 400, "CGAN takes no 'truncation_psi'"),
    ("CGAN", {"data": "{not json", "headers": {"Content-Type": "application/json"}}, 400, "not JSON"),
    ("CGAN", {"json": [1, 2]}, 400, "JSON object"),
    ("StyleGAN", {"json": {"truncation_psi": 9}}, 400, "truncation_psi must be a number in -2..2"),
    ("StyleGAN", {"json": {"n": 8, "mix_seeds": list(range(8))}}, 400, "above this server's limit of 64"),
    ("GANINTCLS", {"json": {"prompt": "   "}}, 400, "needs a prompt"),
    ("GANINTCLS", {"json": {"seed": 1}}, 400, "needs a prompt"),
    ("GANINTCLS", {"json": {"prompt": "a thick seven " * 20}}, 400, "above the limit of 200"),
    ("GANINTCLS", {"json": {"prompt": "one two three four five six seven eight nine"}}, 400, "reads 8 at most"),
    ("Pix2Pix", {"files": {"image": ("x.txt", b"not an image at all")}}, 400, "not an image"),
    ("Pix2Pix", {"files": {"image": ("g.png", _grey_png())}}, 400, "has 1 channels"),
    ("Pix2Pix", {"json": {"seed": 1}}, 400, "multipart/form-data field 'image'"),
    ("SRResNet", {"files": {"image": ("big.png", png(torch.zeros(80, 80, 3, dtype=torch.uint8)))}}, 413, "80x80"),
    ("SRResNet", {"files": {"image": ("huge.bin", bytes(200_000))}}, 413, "larger than this server's limit"),
    (
        "SRResNet",
        {"files": {"image": ("x.png", png(torch.zeros(8, 8, 3, dtype=torch.uint8)))}, "data": {"direction": "BtoA"}},
        400,
        "takes no 'direction'",
    ),
]


@pytest.mark.parametrize("name,sent,status,words", BAD, ids=[f"{b[0]}-{b[3][:24]}" for b in BAD])
def test_a_bad_request_gets_its_4xx_and_the_next_good_one_succeeds(served, name, sent, status, words):
    url, _ = served[name]
    endpoint = url + "/" + TASK.get(name, "sample")
    answer = post(endpoint, **sent)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]
    good = {"Pix2Pix": {"files": {"image": ("x.png", png(torch.zeros(8, 8, 3, dtype=torch.uint8)))}}}
    good["SRResNet"] = good["Pix2Pix"]
    good["GANINTCLS"] = {"json": {"prompt": "a thin one"}}
    after = post(endpoint, **good.get(name, {"json": {"seed": 2}}))
    assert after.status_code == 200 and after.headers["content-type"] == "image/png"


def test_concurrent_clients_are_batched_and_a_bad_request_does_not_fail_its_batch(served, models):
    """A bounded load: 16 clients x 10 requests (one in ten bad), all at once; it stops by itself."""
    url, model = served["CGAN"][0], models["CGAN"]
    results: list[tuple[int, int, int]] = []  # (client, status, batch size)
    firsts: dict[int, bytes] = {}
    lock = threading.Lock()

    def client(k: int) -> None:
        with requests.Session() as session:
            for i in range(10):
                body = {"n": 99} if i == 5 else {"seed": k, "class": k % 10}
                answer = session.post(url + "/sample", json=body, timeout=60)
                with lock:
                    results.append((k, answer.status_code, int(answer.headers.get("x-batch-size", 0))))
                    if i == 0:
                        firsts[k] = answer.content

    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 160
    assert sorted({status for _, status, _ in results}) == [200, 400]
    assert sum(status == 400 for _, status, _ in results) == 16  # exactly the bad ones
    assert max(size for _, status, size in results if status == 200) > 1  # requests shared forward passes
    for k, answer in firsts.items():  # batched with others, each image is still its own seed's
        assert_same_picture(answer, model.sample(z=noise(model, 1, k), labels=torch.tensor([k % 10])))


def test_the_commands_refuse_a_missing_model_or_palette_before_starting(tmp_path, capsys):
    from lightning_gans.cli import main

    for argv, words in [
        (["serve"], "give --pretrained DIR, or --ckpt_path PATH"),
        (["serve", "--pretrained", str(tmp_path / "nothing")], "neither a pretrained folder"),
        (["demo", "--pretrained", str(tiny_folder("GauGAN", tmp_path))], "give --label_palette"),
        (["serve", "--pretrained", str(tmp_path / "GauGAN"), "--label_palette", "[[0, 0, 0], [9, 9, 9]]"], "2 colours"),
        (["serve", "--pretrained", str(tmp_path / "GauGAN"), "--device", "tpu"], "cpu, cuda or mps"),
    ]:
        with pytest.raises(SystemExit):
            main(argv)
        assert words in capsys.readouterr().err


def test_a_colour_label_map_upload_becomes_the_models_one_hot_input(tmp_path):
    """GauGAN (and Pix2Pix on label maps) read an uploaded colour map through the palette, at the model's size."""
    from lightning_gans.serving import Limits, parse_image, resolve_palette, run_images

    model = lightning_gans.from_pretrained(tiny_folder("GauGAN", tmp_path))
    colours = [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]
    palette = resolve_palette(model, json.dumps(colours))
    labels = torch.arange(4).repeat_interleave(10)[None].expand(20, -1)  # four vertical bands, 20 x 40
    upload = torch.tensor(colours, dtype=torch.uint8)[labels]
    req = parse_image(model, png(upload), {"image": 1}, Limits(), palette)
    assert req.input.shape == (1, 4, 32, 32) and req.size == (20, 40)
    assert torch.equal(req.input[0].argmax(0)[0], torch.arange(4).repeat_interleave(8))  # nearest resize of the bands
    (output,) = run_images(model, [req])
    assert output.shape == (1, 3, 20, 40)


def test_a_checkpoint_serves_like_a_pretrained_folder(tmp_path):
    """--config + --ckpt_path: the model of a run's checkpoint (here a 0.1 one), with the same requests and images."""
    from lightning_gans.serving import Limits, load_model, parse_sample, run_samples, task_of

    fixtures = Path(__file__).parent / "fixtures" / "checkpoints_0_1"
    model = load_model(ckpt_path=str(fixtures / "WGANGP.ckpt"))
    assert task_of(model) == "sample" and not model.training
    (images,) = run_samples(model, [parse_sample(model, {"n": 3, "seed": 5}, Limits())])
    assert torch.equal(images, model.sample(z=noise(model, 3, 5)))
    folder = model.save_pretrained(str(tmp_path / "p"))
    (again,) = run_samples(lightning_gans.from_pretrained(folder), [parse_sample(model, {"n": 3, "seed": 5}, Limits())])
    assert torch.equal(again, images)
    with pytest.raises(ValueError, match="not both"):
        load_model(pretrained=str(folder), ckpt_path=str(fixtures / "WGANGP.ckpt"))
