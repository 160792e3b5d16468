"""``lightning-gans serve``: an HTTP inference server for a pretrained folder or a checkpoint, on LitServe.

    lightning-gans serve --pretrained pretrained/fast_mnist                  # http://127.0.0.1:8000
    curl -X POST http://127.0.0.1:8000/sample -d '{"n": 16, "seed": 3, "class": 7}' -o sevens.png
    lightning-gans serve --config configs/pix2pix_facades.yaml --ckpt_path runs/pix2pix_facades/checkpoints/last.ckpt
    curl -X POST http://127.0.0.1:8000/translate -F image=@labels.png -o facade.png

Endpoints, by what the family does (:mod:`lightning_gans.serving`): ``POST /sample`` (a JSON object: ``n``,
``seed``, and as the family takes them ``class``, ``truncation_psi``, ``mix_seeds``, ``prompt``), ``POST /translate``
and ``POST /upscale`` (an image in the multipart field ``image``; CycleGAN also ``direction``); each answers a PNG (a
grid for several images) or, with ``format: json``, ``{"images": [base64 PNG, ...], ...}``. ``GET /health`` answers
``ok`` once the model is loaded; ``GET /info`` the family, task, shapes, request fields, limits and the model card's
metrics. Each answer's ``X-Batch-Size`` header says how many requests shared its forward pass.

Batching: LitServe collects up to ``--max_batch_size`` requests that arrive within ``--batch_timeout`` seconds into
one call; requests with the same settings then run as one forward pass. A bad request (a field the family does not
take, ``n`` above ``--max_samples``, an unknown class, an empty or too long prompt, an upload that is not an image, too
large, or of the wrong channel count) gets a 4xx answer ``{"error": "..."}`` on its own: the requests batched with it
are answered as if it had not come, and the server keeps serving.

The server binds 127.0.0.1 (this machine only) unless ``--host`` says otherwise: ``--host 0.0.0.0`` exposes it to
the network, with no authentication (put it behind a proxy that has some).
"""

from __future__ import annotations

import argparse
import base64
import json
from dataclasses import dataclass
from typing import Any

import litserve as ls
from fastapi.responses import JSONResponse, Response

from lightning_gans.serving import (
    BadRequest,
    ImageRequest,
    Limits,
    SampleRequest,
    add_model_arguments,
    bicubic,
    card_metrics,
    describe,
    limits_of,
    load_model,
    model_source,
    parse_image,
    parse_sample,
    png_bytes,
    resolve_palette,
    run_images,
    run_samples,
    task_of,
    unknown_words,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lightning-gans serve", description="Serve a trained model over HTTP (LitServe), with batching."
    )
    add_model_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="the address to bind: 127.0.0.1 (this machine) or 0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max_batch_size", type=int, default=16, help="requests per forward pass (1: no batching)")
    parser.add_argument("--batch_timeout", type=float, default=0.01, help="seconds to wait for a batch to fill")
    parser.add_argument("--workers", type=int, default=1, help="model copies (inference processes) per device")
    parser.add_argument("--timeout", type=float, default=60, help="seconds a request may wait before a 504")
    return parser


# ------------------------------------------------------------------------------------------------ the LitAPI
@dataclass
class Result:
    """A request's images, with what the answer reports besides them."""

    request: SampleRequest | ImageRequest
    images: Any
    batch_size: int
    extra: dict[str, Any]


class GANServeAPI(ls.LitAPI):
    """The LitAPI of one model at ``/<task>``: requests are checked in ``decode_request`` (a bad one becomes a
    :class:`BadRequest`, answered on its own), run together in ``predict``, and answered in ``encode_response``. Its
    worker loads the model in ``setup``."""

    def __init__(
        self, source: dict[str, Any], task: str, limits: Limits, label_palette: str | None, **batching: Any
    ) -> None:
        super().__init__(api_path=f"/{task}", **batching)
        self.source, self.task, self.limits, self.label_palette = source, task, limits, label_palette

    def setup(self, device: str) -> None:
        self.model = load_model(**self.source, device=device)
        self.palette = resolve_palette(self.model, self.label_palette)

    def decode_request(self, request):  # no annotations: LitServe passes the parsed body (JSON or form)
        try:
            if self.task == "sample":
                return parse_sample(self.model, request, self.limits)
            upload = request.get("image") if hasattr(request, "get") else None
            if upload is None or not hasattr(upload, "read"):
                raise BadRequest(
                    f"send the image as the multipart/form-data field 'image', e.g. curl -X POST "
                    f"http://HOST:PORT/{self.task} -F image=@photo.png -o out.png"
                )
            fields = {k: v for k, v in request.items() if k != "image"}
            return parse_image(self.model, upload.file.read(), {"image": 1, **fields}, self.limits, self.palette)
        except BadRequest as err:  # answered on its own: the requests batched with it still run
            return err

    def predict(self, x: Any) -> Any:
        items = x if isinstance(x, list) else [x]
        good = [i for i, item in enumerate(items) if not isinstance(item, BadRequest)]
        run = run_samples if self.task == "sample" else run_images
        images = run(self.model, [items[i] for i in good]) if good else []
        out: list[Any] = list(items)
        for i, image in zip(good, images):
            req, extra = items[i], {}
            if self.task == "sample" and req.prompt is not None:
                extra["unknown_words"] = unknown_words(self.model, req.prompt)
            if self.task == "upscale" and req.format == "json":
                extra["bicubic"] = bicubic(self.model, req)
            out[i] = Result(req, image, len(items), extra)
        return out if isinstance(x, list) else out[0]

    def unbatch(self, output: list[Any]) -> list[Any]:
        return output

    def encode_response(self, output):  # a Response: PNG, JSON, or the error with its status
        if isinstance(output, BadRequest):
            return JSONResponse({"error": output.message}, status_code=output.status)
        req, headers = output.request, {"X-Batch-Size": str(output.batch_size)}
        mixing = isinstance(req, SampleRequest) and bool(req.mix_seeds)
        nrow = len(req.mix_seeds) + 1 if mixing else None
        if req.format == "png":
            return Response(png_bytes(output.images, nrow), media_type="image/png", headers=headers)
        answer: dict[str, Any] = {"batch_size": output.batch_size}
        if mixing:
            answer |= {"images": [_b64(png_bytes(output.images, nrow))], "grid": {"rows": req.n, "cols": nrow - 1}}
        else:
            answer["images"] = [_b64(png_bytes(image[None])) for image in output.images]
        if isinstance(req, SampleRequest):
            answer |= {"n": req.n, "seed": req.seed}
        for key, value in output.extra.items():
            answer[key] = [_b64(png_bytes(value))] if key == "bicubic" else value
        return JSONResponse(answer, headers=headers)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# ------------------------------------------------------------------------------------------------ the middleware
class RequestCheck:
    """ASGI middleware in front of the model's endpoint: a body larger than ``max_bytes`` gets 413 before it is
    read whole; a body that is not multipart must be a JSON object (400 otherwise). A JSON body sent as a form
    (``curl -d`` without a Content-Type) is read as JSON; an empty body as ``{}`` (every field at its default)."""

    def __init__(self, app: Any, max_bytes: int, paths: tuple[str, ...]) -> None:
        self.app, self.max_bytes, self.paths = app, max_bytes, paths

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if int(headers.get(b"content-length", b"0") or 0) > self.max_bytes:
            return await _error(send, 413, f"the request is larger than this server's limit of {self.max_bytes} bytes")
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await _error(
                    send, 413, f"the request is larger than this server's limit of {self.max_bytes} bytes"
                )
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        if not content_type.startswith("multipart/form-data"):
            try:
                payload = json.loads(body or b"{}")
            except (ValueError, UnicodeDecodeError) as err:
                return await _error(
                    send,
                    400,
                    f"the body is not JSON ({err}): send a JSON object, e.g. curl -X POST URL -H 'Content-Type: "
                    "application/json' -d '{\"seed\": 0}', or an image as multipart/form-data (curl -F image=@x.png)",
                )
            if not isinstance(payload, dict):
                return await _error(
                    send, 400, f"the body must be a JSON object ({{...}}), got {type(payload).__name__}"
                )
            body = json.dumps(payload).encode()
            kept = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
            kept += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            scope = {**scope, "headers": kept}
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _error(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# ------------------------------------------------------------------------------------------------ the command
def build_server(args: argparse.Namespace):
    """The LitServer of ``args`` (the model is loaded here once, so a bad folder or checkpoint fails before the
    server starts, and again in each worker)."""
    if args.device not in ("cpu", "cuda", "mps"):
        raise ValueError(
            f"serve's --device must be cpu, cuda or mps, got {args.device!r} (choose the GPU with CUDA_VISIBLE_DEVICES)"
        )
    source, limits = model_source(args), limits_of(args)
    model = load_model(**source, device="cpu")  # checked here, loaded again on args.device by each worker
    resolve_palette(model, args.label_palette)  # an unknown or mismatched palette fails now
    task = task_of(model)
    info = describe(model, limits, args.pretrained or args.ckpt_path, card_metrics(args.pretrained))
    info["batching"] = {"max_batch_size": args.max_batch_size, "batch_timeout": args.batch_timeout}
    del model
    if args.max_batch_size < 1:
        raise ValueError(f"--max_batch_size must be at least 1, got {args.max_batch_size}")
    api = GANServeAPI(
        source, task, limits, args.label_palette, max_batch_size=args.max_batch_size, batch_timeout=args.batch_timeout
    )
    check = (RequestCheck, {"max_bytes": limits.max_upload_bytes + 2**16, "paths": (f"/{task}",)})
    return ls.LitServer(
        api,
        accelerator=args.device,
        devices=1,
        workers_per_device=args.workers,
        timeout=args.timeout,
        model_metadata=info,
        middlewares=[check],
    ), info


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    server, info = build_server(args)
    print(
        f"lightning-gans serve: {info['family']} ({info['source']}) at http://{args.host}:{args.port}"
        f"{info['endpoint']}; GET /info, /health",
        flush=True,
    )
    server.run(host=args.host, port=args.port, generate_client_file=False)


if __name__ == "__main__":  # python -m lightning_gans.serve (what lightning-gans serve runs)
    main()
