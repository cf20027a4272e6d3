"""One sync: load snapshot -> build -> validate -> diff -> write in one transaction -> relay events."""
