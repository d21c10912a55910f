-- One row per team per played match: the match seen from each side.
with matches as (
    select * from {{ ref('stg_matches') }}
),

sides as (
    select
        match_id,
        division,
        season,
        match_date,
        home_team_id as team_id,
        away_team_id as opponent_id,
        true as is_home,
        home_goals as goals_for,
        away_goals as goals_against,
        home_shots as shots_for,
        away_shots as shots_against,
        home_shots_on_target as shots_on_target_for,
        away_shots_on_target as shots_on_target_against,
        home_corners as corners_for,
        away_corners as corners_against,
        home_yellow_cards + home_red_cards as cards
    from matches

    union all

    select
        match_id,
        division,
        season,
        match_date,
        away_team_id as team_id,
        home_team_id as opponent_id,
        false as is_home,
        away_goals as goals_for,
        home_goals as goals_against,
        away_shots as shots_for,
        home_shots as shots_against,
        away_shots_on_target as shots_on_target_for,
        home_shots_on_target as shots_on_target_against,
        away_corners as corners_for,
        home_corners as corners_against,
        away_yellow_cards + away_red_cards as cards
    from matches
)

select
    *,
    case
        when goals_for > goals_against then 3
        when goals_for = goals_against then 1
        else 0
    end as points
from sides
