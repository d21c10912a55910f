-- One row per upcoming match, with the same ids a played match gets (match_id carries over once it is played).
with source as (
    select * from {{ source('raw', 'fixtures') }}
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

-- Slugging is regex work: once per distinct club (a few hundred) rather than twice per row.
teams as (
    select country, team, {{ team_id('country', 'team') }} as team_id
    from (
        select country, home_team as team from renamed
        union
        select country, away_team as team from renamed
    ) as names
),

identified as (
    select
        renamed.*,
        home.team_id as home_team_id,
        away.team_id as away_team_id
    from renamed
    inner join teams as home on home.country = renamed.country and home.team = renamed.home_team
    inner join teams as away on away.country = renamed.country and away.team = renamed.away_team
)

select
    {{ match_id('division', 'match_date', 'home_team_id', 'away_team_id') }} as match_id,
    *
from identified
