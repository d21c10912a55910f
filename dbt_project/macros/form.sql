{#- Pre-match form: the statistics, the window arithmetic and the mart column list, shared by the models. -#}

{% macro form_stats() -%}
    {#- per team and match, from int_team_matches_unpivoted; cards = yellow + red -#}
    {{ return(['goals_for', 'goals_against', 'shots_for', 'shots_against', 'shots_on_target_for',
               'shots_on_target_against', 'corners_for', 'corners_against', 'cards', 'points']) }}
{%- endmacro %}

{% macro venue_stats() -%}
    {{ return(['points', 'goals_for', 'goals_against']) }}
{%- endmacro %}

{% macro form_windows() -%}
    {#- suffixes of the rolling features: means over the last 5 and 10 match days, and the weighted mean -#}
    {{ return(['last5', 'last10', 'ewm']) }}
{%- endmacro %}

{% macro ratio(numerator, denominator) -%}
    {#- a double on both engines (PostgreSQL divides integers as integers); null when nothing was counted -#}
    cast({{ numerator }} as double precision) / nullif(cast({{ denominator }} as double precision), 0)
{%- endmacro %}

{% macro earlier_rows(window, n='unbounded') -%}
    {#- The last n rows before the current one. Ending at 1 PRECEDING is what keeps a row from seeing itself
        or anything later; rows are match days, so other matches on the same day are not "earlier" either. -#}
    over ({{ window }} rows between {{ n }} preceding and 1 preceding)
{%- endmacro %}

{% macro mean_of_earlier(stat, n, window) -%}
    {#- mean per match of <stat> over the last n match days (<stat>_sum / <stat>_n per day, so a missing
        statistic is left out rather than counted as zero) -#}
    {{ ratio('sum(' ~ stat ~ '_sum) ' ~ earlier_rows(window, n), 'sum(' ~ stat ~ '_n) ' ~ earlier_rows(window, n)) }}
{%- endmacro %}

{% macro side_features(form, side, match_date) -%}
    {#- The pre-match features of one side, from its int_team_form_computed row (alias `form`). -#}
        {{ dbt.datediff(form ~ '.previous_match_date', match_date, 'day') }} as {{ side }}_rest_days,
        coalesce({{ form }}.matches_played, 0) as {{ side }}_matches_played,
    {%- for stat in form_stats() %}{% for w in form_windows() %}
        {{ form }}.{{ stat }}_{{ w }} as {{ side }}_{{ stat }}_{{ w }},
    {%- endfor %}{% endfor %}
        coalesce({{ form }}.{{ side }}_venue_matches_last5, 0) as {{ side }}_venue_matches_last5,
    {%- for stat in venue_stats() %}
        {{ form }}.{{ side }}_venue_{{ stat }}_last5 as {{ side }}_venue_{{ stat }}_last5{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{% macro head_to_head_features(h2h, home_team_id) -%}
    {#- int_head_to_head_computed keeps a pair's history from team_a's side; turn it to the home team's. -#}
        coalesce({{ h2h }}.meetings_last5, 0) as h2h_meetings_last5,
        case when {{ home_team_id }} = {{ h2h }}.team_a_id then {{ h2h }}.team_a_points_last5
             else {{ h2h }}.team_b_points_last5 end as h2h_home_points_last5,
        case when {{ home_team_id }} = {{ h2h }}.team_a_id then {{ h2h }}.team_a_goal_diff_last5
             else -{{ h2h }}.team_a_goal_diff_last5 end as h2h_home_goal_diff_last5
{%- endmacro %}

{% macro seasons_to_rebuild() -%}
    {#- The earliest season an incremental run must rebuild: the earliest of the requested seasons
        (var 'seasons') and of the seasons with a raw partition whose file (sha256) this table has not been
        built from yet. Every later season is rebuilt too, because form and head-to-head carry across
        seasons. Content hashes, not load times: reloading an unchanged file rebuilds nothing. -#}
    {%- set requested = var('seasons', []) -%}
    {%- if requested is string -%}{%- set requested = [requested] -%}{%- endif -%}
    select min(season) from (
        select loaded.season
        from (select distinct division, season, source_sha256 from {{ ref('stg_matches') }}) as loaded
        where not exists (
            select 1 from {{ this }} as built
            where built.division = loaded.division
                and built.season = loaded.season
                and built.source_sha256 is not distinct from loaded.source_sha256
        )
        {%- for key in requested %}
        {%- set label = (key | string).split('|')[-1] %}
        {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}$', label) %}
        {{- exceptions.raise_compiler_error("var 'seasons': not a season label or 'DIV|season' key: " ~ key) }}
        {%- endif %}
        union all select '{{ label }}'
        {%- endfor %}
    ) as changed_seasons
{%- endmacro %}
