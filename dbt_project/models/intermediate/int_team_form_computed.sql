-- Pre-match form: one row per team per match day, holding the team's state BEFORE that day from strictly
-- earlier days, plus one row per team (match_date null) holding its state before its next, unplayed match.
{%- set stats = form_stats() %}
{%- set split_stats = venue_stats() %}
{%- set ewm_days, ewm_decay = 10, 0.8 %}

with team_matches as (
    select * from {{ ref('int_team_matches_unpivoted') }}
),

-- Days, not matches, are the unit of "earlier": a team plays at most once a day, and if bad data (say two
-- clubs sharing a name) puts two of its matches on one date, neither may see the other.
played_days as (
    select
        team_id,
        match_date,
        count(*) as matches,
        sum(case when is_home then 1 else 0 end) as home_matches,
        sum(case when is_home then 0 else 1 end) as away_matches,
        {%- for stat in stats %}
        sum({{ stat }}) as {{ stat }}_sum,
        count({{ stat }}) as {{ stat }}_n{{ ',' if not loop.last }}
        {%- endfor %}
    from team_matches
    group by team_id, match_date
),

-- The extra row sorts after every played day, so its frames cover the team's whole history.
team_days as (
    select * from played_days

    union all

    select
        team_id,
        cast(null as date) as match_date,
        0, 0, 0,
        {%- for stat in stats %}
        0, 0{{ ',' if not loop.last }}
        {%- endfor %}
    from (select distinct team_id from played_days) as teams
),

numbered_days as (
    select
        *,
        row_number() over (partition by team_id order by match_date nulls last) as day_number
    from team_days
),

form as (
    select
        team_id,
        match_date,
        day_number,
        lag(match_date) over team_history as previous_match_date,
        cast(coalesce(sum(matches) {{ earlier_rows('team_history') }}, 0) as integer) as matches_played,
        -- how many earlier days the team played at home / away: locates its venue form below
        coalesce(sum(case when home_matches > 0 then 1 else 0 end) {{ earlier_rows('team_history') }}, 0) as home_days_before,
        coalesce(sum(case when away_matches > 0 then 1 else 0 end) {{ earlier_rows('team_history') }}, 0) as away_days_before,
        {%- for stat in stats %}
        {{ mean_of_earlier(stat, 5, 'team_history') }} as {{ stat }}_last5,
        {{ mean_of_earlier(stat, 10, 'team_history') }} as {{ stat }}_last10{{ ',' if not loop.last }}
        {%- endfor %}
    from numbered_days
    window team_history as (partition by team_id order by match_date nulls last)
),

-- Exponentially weighted form without recursion: each day with the team's {{ ewm_days }} previous days, the k-th
-- weighing {{ ewm_decay }}^(k-1) (half-life about 3 matches), normalised over the days that exist. An equi-join on
-- day number - k rather than a lag() per day and statistic: the same sums, far cheaper on PostgreSQL.
earlier_days as (
    select
        this_day.team_id,
        this_day.day_number,
        power(cast({{ ewm_decay }} as double precision), steps_back.k - 1) as weight,
        {%- for stat in stats %}
        earlier_day.{{ stat }}_sum,
        earlier_day.{{ stat }}_n{{ ',' if not loop.last }}
        {%- endfor %}
    from numbered_days as this_day
    cross join (values {% for k in range(1, ewm_days + 1) %}({{ k }}){{ ', ' if not loop.last }}{% endfor %}) as steps_back (k)
    inner join numbered_days as earlier_day
        on earlier_day.team_id = this_day.team_id
        and earlier_day.day_number = this_day.day_number - steps_back.k
),

weighted_form as (
    select
        team_id,
        day_number,
        {%- for stat in stats %}
        {{ ratio('sum(weight * ' ~ stat ~ '_sum)', 'sum(weight * ' ~ stat ~ '_n)') }} as {{ stat }}_ewm{{ ',' if not loop.last }}
        {%- endfor %}
    from earlier_days
    group by team_id, day_number
),

-- Home/away split: the same, per venue. Each team gets an extra row per venue for its next match there.
venue_days as (
    select
        team_id,
        is_home,
        match_date,
        count(*) as matches,
        {%- for stat in split_stats %}
        sum({{ stat }}) as {{ stat }}_sum{{ ',' if not loop.last }}
        {%- endfor %}
    from team_matches
    group by team_id, is_home, match_date

    union all

    select
        teams.team_id,
        venues.is_home,
        cast(null as date) as match_date,
        0,
        {%- for stat in split_stats %}
        0{{ ',' if not loop.last }}
        {%- endfor %}
    from (select distinct team_id from team_matches) as teams
    cross join (values (true), (false)) as venues (is_home)
),

venue_form as (
    select
        team_id,
        is_home,
        row_number() over venue_history as venue_day_number,
        cast(coalesce(sum(matches) {{ earlier_rows('venue_history', 5) }}, 0) as integer) as matches_last5,
        {%- for stat in split_stats %}
        {{ ratio('sum(' ~ stat ~ '_sum) ' ~ earlier_rows('venue_history', 5),
                 'sum(matches) ' ~ earlier_rows('venue_history', 5)) }} as {{ stat }}_last5{{ ',' if not loop.last }}
        {%- endfor %}
    from venue_days
    window venue_history as (partition by team_id, is_home order by match_date nulls last)
)

select
    form.team_id,
    form.match_date,
    form.match_date is null as is_next_match,
    form.previous_match_date,
    {{ dbt.datediff('form.previous_match_date', 'form.match_date', 'day') }} as rest_days,
    form.matches_played,
    {%- for stat in stats %}
    form.{{ stat }}_last5,
    form.{{ stat }}_last10,
    weighted_form.{{ stat }}_ewm,
    {%- endfor %}
    -- The venue row numbered (earlier days there + 1) is the team's next day at that venue, or its extra
    -- row; its frames end just before it, so it holds exactly the venue matches before this day.
    {%- for venue, rows in [('home', 'at_home'), ('away', 'away_from_home')] %}
    {{ rows }}.matches_last5 as {{ venue }}_venue_matches_last5,
    {%- for stat in split_stats %}
    {{ rows }}.{{ stat }}_last5 as {{ venue }}_venue_{{ stat }}_last5{{ ',' if not (loop.last and venue == 'away') }}
    {%- endfor %}
    {%- endfor %}
from form
-- a team's first day has no earlier days, so no weighted form
left join weighted_form
    on weighted_form.team_id = form.team_id
    and weighted_form.day_number = form.day_number
inner join venue_form as at_home
    on at_home.team_id = form.team_id
    and at_home.is_home
    and at_home.venue_day_number = form.home_days_before + 1
inner join venue_form as away_from_home
    on away_from_home.team_id = form.team_id
    and not away_from_home.is_home
    and away_from_home.venue_day_number = form.away_days_before + 1
