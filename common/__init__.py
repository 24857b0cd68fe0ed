"""Project-wide helpers below every layer: config checks with their error type, torch maths."""
