-- De-margined probabilities lie in (0, 1) and sum to 1.
select match_id, market_prob_home, market_prob_draw, market_prob_away
from {{ ref('fct_match_features') }}
where market_prob_home <= 0 or market_prob_draw <= 0 or market_prob_away <= 0
    or abs(market_prob_home + market_prob_draw + market_prob_away - 1) > 1e-9
