"""Features: the dbt project's runner (``dbt.py``: stg_matches → form and head-to-head → the marts
fct_match_features and upcoming_match_features) and the sequential team ratings that SQL does badly
(``ratings.py``: Elo, pi-ratings; tables ``ratings.*``, a dbt source). The column lists the marts hold are
part of the serving contract (:mod:`time2bet.serving_contract`)."""
