"""agnes_admin"""
