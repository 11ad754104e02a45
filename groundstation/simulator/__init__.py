"""The vehicle simulator: a test aircraft streaming IRIG 106 Chapter 10 over UDP."""
