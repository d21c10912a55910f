"""The physical floor of the serving design, for bench/serve.py: a bare Starlette app on uvicorn (one process, no
BentoML, no FastAPI, no middleware) serving the same champion with the same serving snapshot through the same
library code as the service (bento_service.snapshot.Snapshot, bento_service.model.ServedModel,
bento_service.scoring: resolve, cached feature rows, the micro-batched model call, the same response JSON).

    python bench/baseline_app.py --port 3100     # reads TIME2BET_WAREHOUSE_URL and MLFLOW_TRACKING_URI

Routes: POST /predict, POST /predict/batch, GET /readyz (200 once loaded). Champion only (no A/B, no hot swap,
no metrics): what is left is what any server of this design has to do per request.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:   # bento_service lives at the repo root (not installed)
    sys.path.insert(0, str(REPO))

import orjson
import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bento_service import scoring
from bento_service.model import ModelSet, ServedModel
from bento_service.schemas import BatchRequest, MatchColumns, MatchRequest
from bento_service.snapshot import RequestError, Snapshot

STATE: dict = {}


def _json(body, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _invalid(exc: ValidationError) -> Response:
    errors = [{"loc": list(e.get("loc", ())), "type": e.get("type"), "msg": e.get("msg")} for e in exc.errors()]
    return _json({"error": errors[0]["type"] if errors else "invalid", "message": "invalid request",
                  "errors": errors[:20]}, 422)


async def predict(request: Request) -> Response:
    try:
        match = MatchRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        return _invalid(exc)
    try:
        scored = await scoring.score_batched(STATE["batcher"], STATE["models"], STATE["snapshot"], [match], 0.0)
    except RequestError as exc:
        return _json(exc.detail, exc.status)
    return Response(scored.predictions_json()[1:-1], media_type="application/json")


async def predict_batch(request: Request) -> Response:
    body = await request.body()
    matches = MatchColumns.from_batch_json(body)
    if matches is None:
        try:
            matches = BatchRequest.model_validate_json(body).matches
        except ValidationError as exc:
            return _invalid(exc)

    def run() -> bytes:
        scored = scoring.score(STATE["models"], STATE["snapshot"], matches, 0.0)
        return b'{"predictions":' + scored.predictions_json() + b"}"

    try:
        return Response(await run_in_threadpool(run), media_type="application/json")
    except RequestError as exc:
        return _json(exc.detail, exc.status)


async def readyz(_: Request) -> Response:
    return Response(b"ok" if STATE else b"loading", status_code=200 if STATE else 503)


def load() -> None:
    snapshot = Snapshot.load(os.environ["TIME2BET_WAREHOUSE_URL"])
    champion = ServedModel.load(os.environ["MLFLOW_TRACKING_URI"])
    scoring.settle_heap()
    STATE.update(snapshot=snapshot, models=ModelSet(champion=champion), batcher=scoring.MicroBatcher())


app = Starlette(routes=[Route("/predict", predict, methods=["POST"]),
                        Route("/predict/batch", predict_batch, methods=["POST"]),
                        Route("/readyz", readyz)])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3100)
    args = p.parse_args(argv)
    load()   # before listening: /readyz answers 200 as soon as the port is open
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                server_header=False)   # uvloop + httptools when installed, as under bentoml serve
    return 0


if __name__ == "__main__":
    sys.exit(main())
