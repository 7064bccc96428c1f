"""A two-file package for the `files` dataset's context tests (tests/test_evals_episode.py,
tests/test_evals_cli.py): people.py needs a name that only units.py defines."""

UNITS = '''"""Units of length."""

METRES_PER_FOOT = 0.3048


def feet_to_metres(feet):
    return feet * METRES_PER_FOOT
'''
PEOPLE = '''"""People and their heights."""

from units import feet_to_metres


def height_in_metres(person):
    """The person's height in metres."""
    feet = person.height_feet
    metres = feet_to_metres(feet)
    return round(metres, 2)
'''
TALLEST = '''

def tallest(people):
    """The tallest person's height in metres."""
    heights = [height_in_metres(p) for p in people]
    return max(heights)
'''
