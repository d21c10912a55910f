"""Time2Bet serving layer: a BentoML service answering H/D/A forecasts from the MLflow ``champion``.

- ``snapshot.py``  the serving snapshot (every team's latest state, head-to-head, ratings, batch predictions)
                   read once from the warehouse, and the model's feature row for any (home, away, division, date);
- ``model.py``     the registered ``champion`` (and ``challenger``) from the MLflow registry, followed by a
                   watcher that swaps a moved alias in atomically; the stable A/B assignment by match id;
- ``schemas.py``   request and response models;
- ``jobs.py``      durable async batch jobs in Redis (records, results, a pending and a processing list) and
                   the worker thread that runs them;
- ``service.py``   the BentoML service (entry point: ``bentoml serve bento_service.service:Time2BetService``).
"""
