"""Universes by rule (issue 13): definitions as data, a reconstitution calendar and a pure engine.

    definition.py   RuleDefinition (+ its parts) from rules/defaults.toml and `cache_config` rows
                    (name `rule_universes`), validated at the edge: errors name the definition and field
    schedule.py     SessionCalendar: which sessions are reconstitution days (pure, fed with NYSE sessions)
    stats.py        SymbolStats: the immutable per-symbol statistics of one session
    engine.py       run(definition, previous, stats, session, calendar) -> RunResult (members, a reason with
                    numbers for every change and every kept-by-band member, explain(symbol), churn);
                    run_all(definitions, ...) the same for several, sharing screens and rankings

Nothing here does I/O; the statistics come from `market/liquidity.py` (pl_symbol_liquidity) at the edge.
docs/RULE_UNIVERSES.md documents the rules and the built-in definitions.
"""
