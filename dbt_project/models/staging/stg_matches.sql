-- One row per played match: typed, with canonical ids and the market reference odds.
with source as (
    select * from {{ source('raw', 'matches') }}
),

divisions as (
    select * from {{ ref('divisions') }}
),

renamed as (
    select
        source.division,
        -- ids are scoped by the league system's country; a division we do not know counts as its own
        coalesce(divisions.country, source.division) as country,
        source.season,
        cast(source.match_date as date) as match_date,
        source.kickoff_time,
        source.home_team,
        source.away_team,
        source.home_goals,
        source.away_goals,
        -- from the goals: a few published result letters disagree with them (parsing.KNOWN_RESULT_QUIRKS)
        case
            when source.home_goals > source.away_goals then 'H'
            when source.home_goals < source.away_goals then 'A'
            else 'D'
        end as result,
        source.ht_home_goals,
        source.ht_away_goals,
        source.home_shots,
        source.away_shots,
        source.home_shots_on_target,
        source.away_shots_on_target,
        source.home_fouls,
        source.away_fouls,
        source.home_corners,
        source.away_corners,
        source.home_yellow_cards,
        source.away_yellow_cards,
        source.home_red_cards,
        source.away_red_cards,
        -- Pinnacle closing is the sharpest price; the others fill in where it is missing (older seasons).
        {{ reference_odds([
            ('pinnacle_close', 'source.odds_pinnacle_close'),
            ('pinnacle', 'source.odds_pinnacle'),
            ('avg', 'source.odds_avg'),
            ('bb_avg', 'source.odds_bb_avg'),
            ('b365', 'source.odds_b365'),
        ]) }},
        -- the raw file the row came from, and when it was loaded
        source.source_sha256,
        source.loaded_at as source_loaded_at
    from source
    left join divisions on divisions.division = source.division
),

{{ with_match_ids('renamed') }}
