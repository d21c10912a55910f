-- One row per upcoming match, with the same ids a played match gets (match_id carries over once it is played).
-- The source's fixtures file lists every division it covers: keep those whose matches the platform ingests
-- (TIME2BET_DIVISIONS), the only ones its features and models know.
with source as (
    select * from {{ source('raw', 'fixtures') }}
    where division in (select distinct division from {{ source('raw', 'matches') }})
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
        source.referee,
        -- pre-match prices only: closing odds do not exist before kickoff
        {{ reference_odds([
            ('pinnacle', 'source.odds_pinnacle'),
            ('avg', 'source.odds_avg'),
            ('bb_avg', 'source.odds_bb_avg'),
            ('b365', 'source.odds_b365'),
        ]) }}
    from source
    left join divisions on divisions.division = source.division
),

{{ with_match_ids('renamed') }}
