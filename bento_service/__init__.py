"""Time2Bet serving layer: a BentoML service answering H/D/A forecasts from the MLflow ``champion``.

- ``snapshot.py``  the serving snapshot (every team's latest state, head-to-head, ratings, batch predictions)
                   read once from the warehouse, and the model's feature row for any (home, away, division, date);
- ``model.py``     the registered ``champion`` (and ``challenger``) from the MLflow registry, followed by a
                   watcher that swaps a moved alias in atomically; the stable A/B assignment by match id;
- ``schemas.py``   request and response models;
- ``jobs.py``      durable async batch jobs in Redis (records, results, a pending and a processing list) and
                   the worker thread that runs them;
- ``service.py``   the BentoML service (entry point: ``bentoml serve bento_service.service:Time2BetService``):
                   its lifecycle and its routes, on the FastAPI app of ``app.py``;
- ``errors.py``    error bodies, the exception handlers, the documented error responses;
- ``metrics.py``   the ``time2bet_*`` Prometheus metrics and the request-observing middleware;
- ``fast_path.py`` POST /predict and /predict/batch answered ahead of BentoML's app, by the same route methods.
"""
