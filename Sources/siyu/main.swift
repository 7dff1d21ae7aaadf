print("siyu: under construction")
