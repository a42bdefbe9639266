"""isofield.extract"""
