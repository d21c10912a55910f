{#- Market reference odds and their de-margined probabilities. They are reference columns for evaluating
    models against the market, never features: closing odds are only known at kickoff. -#}

{% macro reference_odds(sources) -%}
    {#- sources: (label, column prefix) in order of preference; the first with all three prices > 1 wins. -#}
    {%- for outcome in ['home', 'draw', 'away'] %}
        case
            {%- for label, prefix in sources %}
            when {{ prefix }}_home > 1 and {{ prefix }}_draw > 1 and {{ prefix }}_away > 1 then {{ prefix }}_{{ outcome }}
            {%- endfor %}
        end as market_odds_{{ outcome }},
    {%- endfor %}
        case
            {%- for label, prefix in sources %}
            when {{ prefix }}_home > 1 and {{ prefix }}_draw > 1 and {{ prefix }}_away > 1 then '{{ label }}'
            {%- endfor %}
        end as market_odds_source
{%- endmacro %}

{% macro market_probabilities(relation) -%}
    {#- Proportional de-margining: p_i = (1/o_i) / sum_j (1/o_j). -#}
    {%- set booksum = "(1.0 / " ~ relation ~ ".market_odds_home + 1.0 / " ~ relation ~ ".market_odds_draw + 1.0 / "
                      ~ relation ~ ".market_odds_away)" -%}
    {%- for outcome in ['home', 'draw', 'away'] %}
        (1.0 / {{ relation }}.market_odds_{{ outcome }}) / {{ booksum }} as market_prob_{{ outcome }},
    {%- endfor %}
        {{ booksum }} - 1.0 as market_overround,
        {{ relation }}.market_odds_source as market_odds_source
{%- endmacro %}
