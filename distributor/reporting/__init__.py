"""What a release's report shows, computed without HTTP: the deliveries per second around
the embargo and the chart drawn from them, failures by reason, the delivery export, and the
outlets directory of the contacts pages."""
