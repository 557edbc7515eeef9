"""The Helm add-ons the platform installs, and how their releases are made."""
