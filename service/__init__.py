"""Data Debugger: find wrong labels, weak spots and what to label next in a text classifier's data."""
