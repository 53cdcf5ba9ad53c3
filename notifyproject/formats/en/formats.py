"""One way to write a time everywhere the console shows one: with seconds, in TIME_ZONE, its
offset shown (an operator comparing the console with logs and provider portals at night must
never have to guess the zone or round to the minute)."""

DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
DATETIME_FORMAT = "Y-m-d H:i:s O"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s O"
