{#- Canonical ids, computed the same way for played matches and fixtures, on DuckDB and PostgreSQL alike. -#}

{% macro team_slug(name) -%}
    {#- Lowercase ASCII slug. Accents are folded with translate()/replace(), which both engines have
        (strip_accents is DuckDB-only, unaccent a PostgreSQL extension); folding happens before lower()
        because PostgreSQL under the C locale lowercases ASCII only. Anything else becomes '_'. -#}
    {%- set accented = "ÀÁÂÃÄÅàáâãäåÇçÈÉÊËèéêëÌÍÎÏìíîïÑñÒÓÔÕÖØòóôõöøÙÚÛÜùúûüÝýÿŠšŽžČčĆćŁłŃńŚśŹźŻżĞğİıŞşŐőŰűĚěŘřŤťŮůĎďŇňĀāĒēĪīŌōŪū" -%}
    {%- set ascii = "AAAAAAaaaaaaCcEEEEeeeeIIIIiiiiNnOOOOOOooooooUUUUuuuuYyySsZzCcCcLlNnSsZzZzGgIiSsOoUuEeRrTtUuDdNnAaEeIiOoUu" -%}
    regexp_replace(
        regexp_replace(
            lower(replace(replace(replace(translate({{ name }}, '{{ accented }}', '{{ ascii }}'), 'ß', 'ss'), 'æ', 'ae'), 'Æ', 'AE')),
            '[^a-z0-9]+', '_', 'g'
        ),
        '^_+|_+$', '', 'g'
    )
{%- endmacro %}

{% macro team_id(country, name) -%}
    {#- '<country>-<name>', e.g. 'england-llanfair_mon': stable across divisions (promotion keeps the id),
        apart across countries (two clubs called Heracles). -#}
    {{ team_slug(country) }} || '-' || {{ team_slug(name) }}
{%- endmacro %}

{% macro match_id(division, match_date, home_team_id, away_team_id) -%}
    {#- md5 of division|date|home|away: a fixture keeps its id once it has been played. -#}
    {{ dbt.hash(division ~ " || '|' || cast(" ~ match_date ~ " as " ~ dbt.type_string() ~ ") || '|' || "
                ~ home_team_id ~ " || '|' || " ~ away_team_id) }}
{%- endmacro %}


{% macro with_match_ids(relation) -%}
    {#- The closing CTEs and select of a staging model whose CTE ``relation`` has country, division,
        match_date, home_team and away_team: adds home_team_id, away_team_id and match_id. -#}
-- Slugging is regex work: once per distinct club (a few hundred) rather than twice per row.
teams as (
    select country, team, {{ team_id('country', 'team') }} as team_id
    from (
        select country, home_team as team from {{ relation }}
        union
        select country, away_team as team from {{ relation }}
    ) as names
),

identified as (
    select
        {{ relation }}.*,
        home.team_id as home_team_id,
        away.team_id as away_team_id
    from {{ relation }}
    inner join teams as home on home.country = {{ relation }}.country and home.team = {{ relation }}.home_team
    inner join teams as away on away.country = {{ relation }}.country and away.team = {{ relation }}.away_team
)

select
    {{ match_id('division', 'match_date', 'home_team_id', 'away_team_id') }} as match_id,
    *
from identified
{%- endmacro %}
