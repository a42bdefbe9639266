"""isofield.nn"""
