-- Pre-match head-to-head: one row per pair of teams per meeting day, holding their last 5 meetings BEFORE that
-- day, plus one row per pair (match_date null) holding them before the pair's next, unplayed meeting.
-- A pair is (team_a_id, team_b_id) in id order, so both venues of a fixture share one history; the marts turn
-- team_a's view into the home team's.
with matches as (
    select * from {{ ref('stg_matches') }}
),

meetings as (
    select
        least(home_team_id, away_team_id) as team_a_id,
        greatest(home_team_id, away_team_id) as team_b_id,
        match_date,
        case when home_team_id <= away_team_id then home_goals - away_goals
             else away_goals - home_goals end as team_a_goal_diff
    from matches
),

-- one row per pair and day, so two meetings on one date (bad data) never see each other
meeting_days as (
    select
        team_a_id,
        team_b_id,
        match_date,
        count(*) as meetings,
        sum(team_a_goal_diff) as team_a_goal_diff_sum,
        sum(case when team_a_goal_diff > 0 then 3 when team_a_goal_diff = 0 then 1 else 0 end) as team_a_points_sum,
        sum(case when team_a_goal_diff < 0 then 3 when team_a_goal_diff = 0 then 1 else 0 end) as team_b_points_sum
    from meetings
    group by team_a_id, team_b_id, match_date

    union all

    select distinct team_a_id, team_b_id, cast(null as date), 0, 0, 0, 0
    from meetings
),

history as (
    select
        team_a_id,
        team_b_id,
        match_date,
        cast(coalesce(sum(meetings) {{ earlier_rows('pair_history', 5) }}, 0) as integer) as meetings_last5,
        {{ ratio('sum(team_a_points_sum) ' ~ earlier_rows('pair_history', 5),
                 'sum(meetings) ' ~ earlier_rows('pair_history', 5)) }} as team_a_points_last5,
        {{ ratio('sum(team_b_points_sum) ' ~ earlier_rows('pair_history', 5),
                 'sum(meetings) ' ~ earlier_rows('pair_history', 5)) }} as team_b_points_last5,
        {{ ratio('sum(team_a_goal_diff_sum) ' ~ earlier_rows('pair_history', 5),
                 'sum(meetings) ' ~ earlier_rows('pair_history', 5)) }} as team_a_goal_diff_last5
    from meeting_days
    window pair_history as (partition by team_a_id, team_b_id order by match_date nulls last)
)

select
    *,
    match_date is null as is_next_meeting
from history
