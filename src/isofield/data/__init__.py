"""isofield.data"""
