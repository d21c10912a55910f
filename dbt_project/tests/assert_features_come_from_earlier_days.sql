-- A match's or fixture's previous match day must lie strictly before it: rest days are positive.
select match_id, home_rest_days, away_rest_days
from {{ ref('fct_match_features') }}
where home_rest_days <= 0 or away_rest_days <= 0

union all

select match_id, home_rest_days, away_rest_days
from {{ ref('upcoming_match_features') }}
where home_rest_days <= 0 or away_rest_days <= 0
