"""What probes observed: plain frozen data shared by probe/ (which fills it) and analysis/."""
