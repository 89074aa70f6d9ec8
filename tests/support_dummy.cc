// Keeps luacs_test_support a valid library while support/ is empty.
