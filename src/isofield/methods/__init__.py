"""isofield.methods"""
