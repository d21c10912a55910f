{# The rating columns the marts take from the `ratings` source (time2bet.ml.training.RATING_FEATURES;
   a test keeps the two in step). #}
{% macro rating_columns(alias) -%}
    {%- set columns = ['home_elo', 'away_elo', 'elo_diff', 'elo_home_expectation',
                       'home_pi_home', 'home_pi_away', 'away_pi_home', 'away_pi_away',
                       'pi_expected_goal_diff'] -%}
    {%- for column in columns %}
        {{ alias }}.{{ column }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}
