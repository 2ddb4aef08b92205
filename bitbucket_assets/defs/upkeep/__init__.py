"""The warehouse's upkeep after every build: raw retention, the history's order, the analysts' read copy."""
