"""isofield.viz"""
