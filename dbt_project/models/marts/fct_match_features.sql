-- One row per played match: both teams' pre-match features, head-to-head, ratings, the market's reference
-- probabilities (market_*, for evaluation only) and the outcome.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='season',
        on_schema_change='fail',
    )
}}

with matches as (
    select * from {{ ref('stg_matches') }}
    {% if is_incremental() -%}
    -- Form and head-to-head always cover the whole history (the intermediate tables); only the rows written
    -- are limited, to the earliest changed season and every later one, which a change reaches through them.
    where season >= ({{ seasons_to_rebuild() }})
    {%- endif %}
),

team_form as (
    select * from {{ ref('int_team_form_computed') }}
),

head_to_head as (
    select * from {{ ref('int_head_to_head_computed') }}
),

-- Elo and pi-ratings before each match, from the Python asset team_ratings (sequential updates)
ratings as (
    select * from {{ source('ratings', 'match_ratings') }}
),

final as (
    select
        matches.match_id,
        matches.division,
        matches.season,
        matches.match_date,
        matches.kickoff_time,
        matches.home_team,
        matches.away_team,
        matches.home_team_id,
        matches.away_team_id,
        {{ side_features('home_form', 'home', 'matches.match_date') }},
        {{ side_features('away_form', 'away', 'matches.match_date') }},
        {{ head_to_head_features('h2h', 'matches.home_team_id') }},
        {{ rating_columns('ratings') }},
        {{ market_probabilities('matches') }},
        matches.result,
        matches.home_goals,
        matches.away_goals,
        matches.source_sha256
    from matches
    -- a played match always has its teams' rows for its own day (the rows hold the state before that day)
    inner join team_form as home_form
        on home_form.team_id = matches.home_team_id
        and home_form.match_date = matches.match_date
    inner join team_form as away_form
        on away_form.team_id = matches.away_team_id
        and away_form.match_date = matches.match_date
    inner join head_to_head as h2h
        on h2h.team_a_id = least(matches.home_team_id, matches.away_team_id)
        and h2h.team_b_id = greatest(matches.home_team_id, matches.away_team_id)
        and h2h.match_date = matches.match_date
    -- left join: a match the ratings have not seen keeps its row and fails the not_null tests on ratings
    left join ratings
        on ratings.match_id = matches.match_id
)

select * from final
