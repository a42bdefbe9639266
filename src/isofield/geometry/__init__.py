"""isofield.geometry"""
