-- One row per fixture, with the same features as fct_match_features, from all matches played before the
-- fixture's date.
with fixtures as (
    select * from {{ ref('stg_fixtures') }}
),

team_form as (
    select * from {{ ref('int_team_form_computed') }}
),

head_to_head as (
    select * from {{ ref('int_head_to_head_computed') }}
),

ratings as (
    select * from {{ source('ratings', 'fixture_ratings') }}
),

-- A fixture's state is the team's first row on or after its date: the row of a later played day (only when
-- results are newer than the fixture list) or the next-match row. Either holds exactly the days before it,
-- and no played day lies between the fixture and that row, so it is the state before the fixture.
home_candidates as (
    select
        fixtures.match_id,
        team_form.*,
        row_number() over (partition by fixtures.match_id order by team_form.match_date nulls last) as pick
    from fixtures
    inner join team_form
        on team_form.team_id = fixtures.home_team_id
        and (team_form.match_date >= fixtures.match_date or team_form.is_next_match)
),

away_candidates as (
    select
        fixtures.match_id,
        team_form.*,
        row_number() over (partition by fixtures.match_id order by team_form.match_date nulls last) as pick
    from fixtures
    inner join team_form
        on team_form.team_id = fixtures.away_team_id
        and (team_form.match_date >= fixtures.match_date or team_form.is_next_match)
),

head_to_head_candidates as (
    select
        fixtures.match_id,
        head_to_head.*,
        row_number() over (partition by fixtures.match_id order by head_to_head.match_date nulls last) as pick
    from fixtures
    inner join head_to_head
        on head_to_head.team_a_id = least(fixtures.home_team_id, fixtures.away_team_id)
        and head_to_head.team_b_id = greatest(fixtures.home_team_id, fixtures.away_team_id)
        and (head_to_head.match_date >= fixtures.match_date or head_to_head.is_next_meeting)
),

final as (
    select
        fixtures.match_id,
        fixtures.division,
        fixtures.season,
        fixtures.match_date,
        fixtures.kickoff_time,
        fixtures.home_team,
        fixtures.away_team,
        fixtures.home_team_id,
        fixtures.away_team_id,
        {{ side_features('home_form', 'home', 'fixtures.match_date') }},
        {{ side_features('away_form', 'away', 'fixtures.match_date') }},
        {{ head_to_head_features('h2h', 'fixtures.home_team_id') }},
        {{ rating_columns('ratings') }},
        {{ market_probabilities('fixtures') }}
    from fixtures
    -- left joins: a team (or pair) with no played match yet has no history, only empty features
    left join home_candidates as home_form
        on home_form.match_id = fixtures.match_id and home_form.pick = 1
    left join away_candidates as away_form
        on away_form.match_id = fixtures.match_id and away_form.pick = 1
    left join head_to_head_candidates as h2h
        on h2h.match_id = fixtures.match_id and h2h.pick = 1
    left join ratings
        on ratings.match_id = fixtures.match_id
)

select * from final
