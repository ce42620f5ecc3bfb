"""What the routes lean on: settings, image validation, upload parsing, jobs, metrics."""
